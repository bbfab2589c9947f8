from services.customers import referrals


class Forest:
    """customer docs by id, as the storage would return them"""

    def __init__(self, links):
        self.docs = {cid: {"_id": cid, "company_name": f"公司{cid}", "referred_by": parent}
                     for cid, parent in links.items()}
        self.kids = {}
        for d in sorted(self.docs.values(), key=lambda d: d["_id"]):
            self.kids.setdefault(d["referred_by"], []).append(d)
        self.calls = []

    def children_of(self, ids, limit):
        self.calls.append((list(ids), limit))
        kids = [d for i in ids for d in self.kids.get(i, [])]
        return sorted(kids, key=lambda d: d["_id"])[:limit]

    def parent_of(self, cid):
        return self.docs.get(cid)

    def count(self, ids):
        out = {}
        for d in self.docs.values():
            if d["referred_by"] in ids:
                out[d["referred_by"]] = out.get(d["referred_by"], 0) + 1
        return out

    def tree(self, root, depth=10, nodes=1000):
        found = referrals.collect_descendants(root, self.children_of, depth, nodes)
        counts = referrals.referred_counts(found, self.count(found.count_needed))
        return referrals.build_tree(self.docs[root], found, counts,
                                    lambda d: {"id": d["_id"], "company_name": d["company_name"]})


# 华为 referred 比亚迪 and 美的; 比亚迪 referred 格力, 格力 referred 海尔
LINKS = {"a": None, "b": "a", "c": "a", "d": "b", "e": "d"}


def shape(node):
    return {node["customer"]["id"]: [shape(c) for c in node["children"]]}


def test_the_whole_tree_with_each_ones_count():
    forest = Forest(LINKS)
    tree, truncated = forest.tree("a")
    assert not truncated
    assert shape(tree) == {"a": [{"b": [{"d": [{"e": []}]}]}, {"c": []}]}
    assert tree["customer"]["referred_count"] == 2
    b = tree["children"][0]
    assert b["customer"]["referred_count"] == 1
    assert b["children"][0]["children"][0]["customer"]["referred_count"] == 0
    # one $in query per level, not one per customer
    assert [ids for ids, _ in forest.calls] == [["a"], ["b", "c"], ["d"], ["e"]]


def test_depth_bound_truncates_but_counts_stay_true():
    forest = Forest(LINKS)
    tree, truncated = forest.tree("a", depth=2)
    assert truncated
    assert shape(tree) == {"a": [{"b": [{"d": []}]}, {"c": []}]}
    d = tree["children"][0]["children"][0]
    assert d["customer"]["referred_count"] == 1  # e exists beyond the bound


def test_size_bound_truncates():
    links = {"root": None, **{f"k{i:02d}": "root" for i in range(30)}}
    forest = Forest(links)
    tree, truncated = forest.tree("root", nodes=10)
    assert truncated
    assert len(tree["children"]) == 10
    assert tree["customer"]["referred_count"] == 30
    tree, truncated = forest.tree("root", nodes=30)
    assert not truncated and len(tree["children"]) == 30


def test_exactly_at_the_size_bound_is_not_truncated():
    forest = Forest({"r": None, "x": "r", "y": "r"})
    tree, truncated = forest.tree("r", nodes=2)
    assert not truncated and len(tree["children"]) == 2


def test_a_leaf_is_a_tree_of_one():
    forest = Forest(LINKS)
    tree, truncated = forest.tree("e")
    assert tree == {"customer": {"id": "e", "company_name": "公司e", "referred_count": 0},
                    "children": []}
    assert not truncated


def test_a_long_chain_needs_no_recursion():
    links = {"n0": None, **{f"n{i}": f"n{i - 1}" for i in range(1, 5001)}}
    forest = Forest(links)
    found = referrals.collect_descendants("n0", forest.children_of, 10000, 10000)
    tree, truncated = referrals.build_tree(forest.docs["n0"], found,
                                           referrals.referred_counts(found, {}),
                                           lambda d: {"id": d["_id"]})
    assert found.total == 5000 and not truncated
    node, depth = tree, 0
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    assert depth == 5000


def test_ancestors_root_first():
    forest = Forest(LINKS)
    chain, truncated = referrals.collect_ancestors(forest.docs["e"]["referred_by"],
                                                   forest.parent_of)
    assert [d["_id"] for d in chain] == ["a", "b", "d"]
    assert not truncated
    assert referrals.collect_ancestors(None, forest.parent_of) == ([], False)


def test_a_corrupt_cycle_never_loops_forever():
    forest = Forest({"x": "z", "y": "x", "z": "y"})
    chain, _ = referrals.collect_ancestors("x", forest.parent_of)
    assert sorted(d["_id"] for d in chain) == ["x", "y", "z"]
    tree, _ = forest.tree("x")
    assert shape(tree) == {"x": [{"y": [{"z": []}]}]}


def test_ancestor_walk_is_bounded():
    links = {f"n{i}": (f"n{i - 1}" if i else None) for i in range(300)}
    forest = Forest(links)
    chain, truncated = referrals.collect_ancestors("n299", forest.parent_of, limit=50)
    assert len(chain) == 50 and truncated


def test_cycle_check():
    # making a (the root) referred by e (its great-great-grandchild) closes a loop
    forest = Forest(LINKS)
    ancestors_of_e = [d["_id"] for d in
                      referrals.collect_ancestors("e", forest.parent_of)[0]]
    assert referrals.would_cycle("a", "e", ancestors_of_e)
    assert referrals.would_cycle("a", "a", [])
    assert not referrals.would_cycle("c", "e", ancestors_of_e)
    assert not referrals.would_cycle("a", None, [])


def test_a_cycle_through_a_chain_longer_than_the_display_bound_is_still_refused():
    # n0 <- n1 <- ... <- n299: making n0 referred by n299 closes a loop 300 long
    links = {f"n{i}": (f"n{i - 1}" if i else None) for i in range(300)}
    forest = Forest(links)
    assert referrals.referrer_refusal("n0", "n299", forest.parent_of) == \
        "would make a referral cycle"
    assert referrals.referrer_refusal("x", "n299", forest.parent_of) is None
    assert referrals.referrer_refusal("n0", None, forest.parent_of) is None


def test_a_chain_too_long_to_check_is_refused(monkeypatch):
    monkeypatch.setattr(referrals, "MAX_CHAIN_CHECKED", 10)
    links = {f"n{i}": (f"n{i - 1}" if i else None) for i in range(30)}
    assert "too long" in referrals.referrer_refusal("x", "n29", Forest(links).parent_of)


def test_clamp():
    assert referrals.clamp(None, 10, 50) == 10
    assert referrals.clamp(500, 10, 50) == 50
    assert referrals.clamp(3, 10, 50) == 3
