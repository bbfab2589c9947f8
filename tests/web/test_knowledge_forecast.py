"""Journey 7: the knowledge base (search with highlighted snippets, ask,
answer, accept, share a story, top questions), and journey 8: my forecast."""

import uuid

from playwright.sync_api import expect

from tests.web.conftest import login, ok, shot
from tests.web.test_customers import company


def test_ask_answer_accept_and_find_it_again(new_page, fresh_rep):
    asker, helper = fresh_rep("罗敏"), fresh_rep("谢老师")
    tag = uuid.uuid4().hex[:6]
    title = f"客户总说我们的报价太高，怎么应对？{tag}"
    page = login(new_page(), asker)
    page.get_by_role("link", name="知识库", exact=True).click()
    page.get_by_role("button", name="提问").click()
    dialog = page.get_by_role("dialog", name="向团队提问")
    dialog.get_by_label("标题").fill(title)
    dialog.get_by_label("详细描述").fill("对方采购说同类产品便宜两成，老板不在，没人拍板。")
    dialog.get_by_label("标签").fill("价格，谈判")
    dialog.get_by_role("button", name="发布").click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    question_url = page.url

    other = login(new_page(), helper)
    other.goto(question_url)
    other.get_by_role("button", name="回答").click()
    other.get_by_label("回答内容").fill("先别降价：把报价拆开讲清楚，强调售后和交期，再用小批量试单降低对方决策风险。")
    other.get_by_role("button", name="提交回答").click()
    expect(other.get_by_text("回答已发布")).to_be_visible()

    page.reload()
    answer = page.locator(".answer").filter(has_text="先别降价")
    answer.get_by_role("button", name="采纳").click()
    expect(answer.get_by_text("已采纳")).to_be_visible()
    expect(page.get_by_text("已解决")).to_be_visible()
    shot(page, "07-question-accepted")

    # found again in plain Chinese, without spaces, its match marked
    page.get_by_role("link", name="知识库", exact=True).click()
    page.get_by_label("搜索经验库").fill(f"报价太高{tag}")
    result = page.get_by_role("region", name="搜索结果").get_by_role("listitem").filter(has_text=title)
    expect(result).to_be_visible()
    expect(result.locator("mark").first).to_be_visible()
    shot(page, "07-search")
    page.get_by_label("搜索经验库").fill("")
    page.get_by_role("tab", name="热门问题").click()
    expect(page.get_by_role("link", name=title)).to_be_visible()


def test_share_a_success_story(page, fresh_rep):
    rep = fresh_rep("邱雪")
    title = f"三次拜访拿下东莞五金厂的年度订单 {uuid.uuid4().hex[:4]}"
    login(page, rep)
    page.goto("/knowledge")
    page.get_by_role("button", name="分享经验").click()
    dialog = page.get_by_role("dialog", name="分享成功经验")
    dialog.get_by_label("标题").fill(title)
    dialog.get_by_label("经验内容").fill("第一次送样，第二次带技术员现场调机，第三次请老板参观我们的工厂。")
    dialog.get_by_role("button", name="发布").click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    page.get_by_role("link", name="返回知识库").click()
    page.get_by_role("tab", name="成功经验").click()
    expect(page.get_by_role("link", name=title)).to_be_visible()


def _reload_until(page, total, tries=40):
    """The forecast reads its own copy, kept from events: a customer just
    entered counts a moment later."""
    figure = page.get_by_test_id("forecast-total")
    for _ in range(tries):
        figure.wait_for()
        if figure.inner_text() == total:
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(figure).to_have_text(total)


def test_my_forecast_weighs_the_pipeline_and_says_when_it_is_reliable(new_page, fresh_rep, api):
    # The brief's example, a tenth of it: 4, 3, 2, 1 customers in 25/50/75/90 %
    # are 10 active, fewer than 14: not reliable. 40,000 x .25 ... = 49,000 yuan.
    rep = fresh_rep("田野")
    for stage, n in ((0, 6), (10, 5), (25, 4), (50, 3), (75, 2), (90, 1)):
        for _ in range(n):
            ok(api.post("/api/customers", rep.token, json={
                "company_name": company(trade="贸易有限公司"), "stage": stage,
                "expected_value": 10000}), 201)
    page = login(new_page(), rep)
    page.get_by_role("link", name="预测", exact=True).click()
    expect(page.get_by_role("heading", name="隐形业绩", exact=True)).to_be_visible()
    _reload_until(page, "¥49,000")
    expect(page.get_by_text("数据不足")).to_be_visible()
    funnel = page.locator(".funnel")
    expect(funnel.locator("text", has_text="愿意试样 25%  4")).to_be_visible()
    expect(funnel.locator("text", has_text="签订合同 90%  1")).to_be_visible()
    shot(page, "08-forecast-unreliable")
    # four more in 50 %: 14 active, reliable; 4 x 5,000 yuan more
    for _ in range(4):
        ok(api.post("/api/customers", rep.token, json={
            "company_name": company(trade="贸易有限公司"), "stage": 50, "expected_value": 10000}), 201)
    _reload_until(page, "¥69,000")
    expect(page.get_by_text("数据充足")).to_be_visible()
