// Every visible string of the app, zh-CN. The names marked "UI.md" are the
// accessible names of ../shared/UI.md: browser tests and screen readers find
// the controls by them, so they change only with that contract.
export default {
  app: {
    forbidden: '您没有权限打开这个页面',
    forbiddenHint: '这里是经理的工作台；如需使用，请联系管理员调整您的角色。',
    title: '销售 CRM',
    loading: '加载中…',
    retry: '重试',
    cancel: '取消',
    close: '关闭',
    confirm: '确定',
    empty: '暂无数据',
    notFound: '页面不存在',
    backHome: '返回客户列表',
    yes: '是',
    no: '否',
    none: '无',
    saved: '已保存',
    more: '加载更多',
  },
  login: {
    title: '登录销售 CRM',
    subtitle: '防撞单 · 经验库 · 日程提醒 · 隐形业绩',
    username: '用户名', // UI.md
    password: '密码', // UI.md
    submit: '登录', // UI.md
    wrong: '用户名或密码错误', // UI.md
    tooMany: '尝试次数过多，请 {seconds} 秒后再试',
    expired: '登录已过期，请重新登录',
    refused: '登录状态已失效，请重新登录',
    loggedOut: '您已退出登录',
    required: '请输入用户名和密码',
  },
  nav: {
    team: '团队', // UI.md
    settings: '设置', // UI.md
    approvals: '审批', // UI.md
    customers: '客户', // UI.md
    pool: '公海', // UI.md
    schedule: '日程', // UI.md
    knowledge: '知识库', // UI.md
    forecast: '预测', // UI.md
    menu: '菜单', // UI.md
    main: '主导航',
  },
  header: {
    notifications: '通知', // UI.md: the bell's name starts with it
    logout: '退出登录', // UI.md
    language: '语言', // UI.md
    settings: '我的设置',
    userMenu: '用户菜单',
  },
  roles: { rep: '业务员', manager: '经理', admin: '管理员' },
  customers: {
    title: '我的客户',
    titleTeam: '团队客户',
    titleAll: '全部客户',
    search: '搜索客户', // UI.md
    searchPlaceholder: '公司名称、电话或信用代码',
    stageFilter: '按阶段筛选',
    allStages: '全部阶段',
    new: '新建客户', // UI.md
    colName: '公司名称', // UI.md
    colStage: '阶段', // UI.md
    colOwner: '负责人', // UI.md
    colCreated: '创建时间', // UI.md
    colValue: '预计金额',
    colIndustry: '行业',
    total: '共 {n} 个客户',
    empty: '还没有客户，点击“新建客户”录入第一个',
    emptySearch: '没有符合条件的客户',
    pool: '公海',
  },
  form: {
    title: '新建客户',
    companyName: '公司名称', // UI.md
    companyNamePlaceholder: '例如：深圳市腾讯计算机系统有限公司',
    creditCode: '统一社会信用代码', // UI.md
    contact: '联系人', // UI.md
    contactTitle: '职务',
    decisionLevel: '决策权',
    phone: '联系电话', // UI.md
    email: '邮箱', // UI.md
    address: '地址', // UI.md
    industry: '行业', // UI.md
    expectedValue: '预计金额', // UI.md
    expectedValueHint: '元',
    birthday: '生日', // UI.md
    birthdayPlaceholder: '月-日，例如 03-15',
    birthdayLabel: '生日说明',
    birthdayLabelPlaceholder: '例如：老板生日、公司成立纪念日',
    stage: '初始阶段',
    save: '保存', // UI.md
    cancel: '取消',
    saved: '客户已录入',
    required: '请填写公司名称',
    fixErrors: '请修改标红的内容',
  },
  precheck: {
    available: '可以录入', // UI.md
    taken: '已被 {owner} 录入', // UI.md
    inPool: '已在公海中，可去认领',
    checking: '正在查重…',
    failed: '暂时无法查重：{message}',
    similar: '相似客户', // UI.md
    matchedOn: '相同：{keys}',
    keys: { company_name: '公司名称', phone: '电话', credit_code: '信用代码', email: '邮箱' },
    score: '相似度 {score}%',
    hint: '输入公司名称或电话后自动查重',
    blocked: '该客户已有负责人，不能重复录入',
  },
  decision: {
    1: '1 · 无决策权',
    2: '2 · 影响者',
    3: '3 · 推荐者',
    4: '4 · 决策参与',
    5: '5 · 最终拍板',
  },
  customer: {
    back: '返回列表',
    tabs: {
      disputes: '归属申诉',
      overview: '概况', // UI.md
      followups: '跟进记录', // UI.md
      audit: '操作日志', // UI.md
      referrals: '推荐关系', // UI.md
    },
    owner: '负责人',
    stage: '阶段',
    status: '状态',
    statusActive: '跟进中',
    statusPool: '公海',
    abandonReason: '放弃原因',
    abandonedNote: '经理意见',
    maskedHint: '公海客户的电话和邮箱认领后可见',
    created: '录入时间',
    phones: '电话',
    emails: '邮箱',
    referredBy: '推荐人',
    contacts: '联系人',
    contactName: '姓名',
    contactTitle: '职务',
    contactPhone: '电话',
    contactDecision: '决策权',
    noContacts: '还没有联系人',
    removeContact: '删除联系人 {name}',
    birthdayKind: { birthday: '生日', anniversary: '纪念日' },
    immutable: '客户资料录入后不能自行修改，如需更正请“申请修改”，由经理审批。',
    notFound: '客户不存在，或您无权查看',
    actions: {
      patch: '修改客户资料',
      followup: '添加跟进', // UI.md
      stage: '变更阶段', // UI.md
      amend: '申请修改', // UI.md
      alarm: '困难报警', // UI.md
      revisit: '安排回访', // UI.md
      abandon: '放弃客户',
      claim: '认领',
    },
    followup: {
      content: '跟进内容', // UI.md
      contact: '沟通对象',
      channel: '方式',
      channels: { phone: '电话', visit: '拜访', wechat: '微信', email: '邮件', other: '其他' },
      save: '保存', // UI.md
      saved: '跟进已记录',
      empty: '还没有跟进记录',
      by: '{name} 记录',
      immutable: '跟进记录提交后不能修改或删除',
      claimFirst: '认领后可见跟进记录',
    },
    stageDialog: {
      title: '变更阶段',
      stage: '新阶段',
      note: '说明',
      submit: '确认变更',
      done: '阶段已变更为 {label}',
    },
    patchDialog: {
      title: '修改客户资料',
      hint: '经理直接修改，立即生效；修改原因与前后值记入操作日志。',
      reason: '修改原因',
      submit: '确认修改',
      done: '客户资料已修改',
    },
    disputes: {
      none: '该客户没有归属申诉',
      filed: '申诉时间',
      claimant: '申诉人',
      contact: '申诉方联系人',
      status: '状态',
      statuses: { open: '待处理', resolved: '已处理', void: '已作废' },
      outcome: '结果',
      claimantWon: '判给申诉人（{by} 处理）',
      ownerKept: '维持原负责人（{by} 处理）',
    },
    amendDialog: {
      title: '申请修改客户资料',
      hint: '只填写需要更正的内容，经理批准后生效。',
      field: '修改项',
      current: '当前值',
      proposed: '改为',
      reason: '修改原因',
      submit: '提交申请',
      done: '修改申请已提交，等待经理审批',
      nothing: '请至少修改一项',
    },
    alarmDialog: {
      title: '困难报警',
      hint: '遇到推进困难或准备放弃该客户时，请先报警，经理会介入分析。',
      reason: '遇到的困难',
      submit: '提交报警',
      done: '已报警，经理会收到通知',
      open: '该客户有一条待经理处理的困难报警',
    },
    revisitDialog: {
      title: '安排回访',
      at: '回访时间',
      contact: '回访联系人',
      note: '备注',
      escalate: '短信提醒（分钟）',
      submit: '确认安排',
      done: '回访已安排，到时会提醒您',
    },
    abandonConfirm: '确定把该客户放入公海吗？放弃后其他业务员可以认领。',
    abandoned: '客户已放入公海',
    audit: {
      more: '加载更早的记录（还有 {n} 条）',
      intact: '记录完整', // UI.md
      tampered: '记录被篡改', // UI.md
      at: '时间',
      actor: '操作人',
      action: '操作',
      change: '内容',
      actions: {
        create: '录入客户',
        followup: '添加跟进',
        stage_changed: '变更阶段',
        amendment_requested: '申请修改',
        amendment_approved: '批准修改',
        amendment_rejected: '驳回修改',
        amendment_refused: '修改作废',
        patched: '经理修改',
        alarm_raised: '困难报警',
        alarm_resolved: '处理报警',
        alarm_voided: '报警作废',
        abandoned: '放弃客户',
        claimed: '认领客户',
        dispute_filed: '提出申诉',
        dispute_resolved: '处理申诉',
        dispute_voided: '申诉作废',
        owner_changed: '负责人变更',
      },
    },
    referrals: {
      chartLabel: '推荐关系图',
      hint: '点击节点打开该客户',
      ancestors: '推荐链',
      none: '该客户没有推荐关系',
      hidden: '他人客户',
    },
  },
  pool: {
    title: '公海客户',
    hint: '被放弃的客户进入公海，业务员可以认领后跟进。',
    claim: '认领', // UI.md
    claimed: '已认领：{name}',
    empty: '公海里暂时没有客户',
    colName: '公司名称',
    colIndustry: '行业',
    colStage: '阶段',
    colCreated: '录入时间',
  },
  schedule: {
    title: '日程',
    new: '新建提醒', // UI.md
    titleField: '标题', // UI.md
    content: '内容', // UI.md
    at: '时间', // UI.md
    escalate: '短信提醒（分钟）', // UI.md
    escalateHint: '提醒后这么多分钟内未处理，就发短信到手机；0 表示不发短信，留空用我的默认设置',
    save: '保存', // UI.md (the reminder form)
    edit: '修改',
    cancelReminder: '取消提醒',
    cancelConfirm: '确定取消提醒“{title}”吗？',
    cancelled: '提醒已取消',
    created: '提醒已创建',
    updated: '提醒已修改',
    list: '本月提醒',
    calendar: '日历',
    empty: '这个月没有提醒',
    editTitle: '修改提醒',
    newTitle: '新建提醒',
    status: { pending: '待提醒', fired: '已提醒', acknowledged: '已处理', cancelled: '已取消' },
    kind: { event: '日程', revisit: '回访', birthday: '生日', anniversary: '纪念日' },
    minutes: '{n} 分钟后短信',
    noSms: '不发短信',
    defaultSms: '默认短信设置',
    day: '{date} 的提醒',
    prevMonth: '上个月',
    nextMonth: '下个月',
    today: '今天',
  },
  settings: {
    company: '设置',
    stages: {
      title: '跟踪阶段', // UI.md
      hint: '阶段即成交概率的整数百分比；“计入预测”的阶段才算入隐形业绩。删除仍有客户的阶段时，这些客户保留原阶段，但不再计入预测。',
      stage: '阶段（%）',
      label: '名称',
      probability: '成交概率（%）',
      active: '计入预测',
      customers: '客户数',
      stageOf: '第 {i} 行阶段',
      labelOf: '第 {i} 行名称',
      probabilityOf: '{label} 的成交概率',
      activeOf: '{label} 计入预测',
      removeOf: '删除 {label}',
      remove: '删除',
      add: '添加阶段',
      save: '保存阶段',
      saved: '阶段已保存，预测随之更新',
      holds: '“{label}”还有 {n} 个客户',
      removeWarning: '{names}。删除后这些客户保留原阶段，但不再计入预测。确定保存吗？',
      rowError: '第 {row} 行：{why}',
    },
    users: {
      title: '用户和团队',
      users: '用户',
      teams: '团队',
      teamName: '团队名称',
      newTeam: '新建团队',
      teamCreated: '团队“{name}”已创建',
    },
    title: '我的设置',
    escalate: '默认短信提醒（分钟）',
    escalateHint: '提醒未处理多少分钟后发短信，0 表示不发',
    birthdayLead: '生日提前提醒（天）',
    timezone: '时区',
    save: '保存设置',
    saved: '设置已保存',
  },
  notifications: {
    title: '通知',
    ack: '知道了', // UI.md
    acked: '已处理',
    markAll: '全部已读',
    empty: '没有通知',
    unreadOnly: '只看未读',
    open: '查看',
    live: '实时连接中',
    offline: '连接已断开，正在重连…',
    sms: {
      scheduled: '未确认将发短信', not_needed: '不发短信', sending: '短信发送中', retrying: '短信重试中',
      sent: '已发短信', failed: '短信发送失败', skipped: '未发短信（没有手机号）', cancelled: '已确认，短信取消',
    },
  },
  knowledge: {
    title: '知识库',
    search: '搜索经验库', // UI.md
    searchPlaceholder: '例如：客户嫌价格高怎么办',
    ask: '提问', // UI.md
    share: '分享经验', // UI.md
    tabs: { top: '热门问题', latest: '最新问题', open: '待解答', stories: '成功经验' },
    results: '搜索结果',
    noResults: '没有找到相关内容，换个说法试试，或者直接提问',
    question: '问题',
    story: '成功经验',
    answers: '{n} 个回答',
    views: '{n} 次浏览',
    answered: '已解决',
    open: '待解答',
    accepted: '已采纳',
    accept: '采纳', // UI.md
    answer: '回答', // UI.md
    answerBody: '回答内容',
    submitAnswer: '提交回答',
    answerPosted: '回答已发布',
    acceptedDone: '已采纳该回答',
    askTitle: '向团队提问',
    shareTitle: '分享成功经验',
    fieldTitle: '标题',
    fieldBody: '详细描述',
    fieldStory: '经验内容',
    fieldTags: '标签',
    tagsPlaceholder: '用逗号分隔，例如：价格,谈判',
    publish: '发布',
    asked: '问题已发布',
    shared: '经验已分享',
    by: '{name} · {at}',
    noAnswers: '还没有回答，来帮帮同事吧',
    empty: '还没有内容',
    back: '返回知识库',
  },
  team: {
    title: '团队',
    hint: '每位业务员的客户、报警、放弃和核实为虚假的数量',
    newUser: '新建用户', // UI.md
    report: '诚信报表',
    rep: '业务员',
    customers: '在跟客户',
    created: '录入客户',
    alarms: '报警',
    abandoned: '放弃',
    fake: '核实虚假',
    empty: '团队里还没有业务员',
    customersOf: '{name} 的客户',
    noCustomers: '没有在跟的客户',
    close: '收起',
    userDialog: {
      title: '新建用户',
      name: '姓名',
      username: '登录名',
      password: '初始密码',
      phone: '手机',
      phoneHint: '用于接收短信提醒',
      role: '角色',
      team: '所属团队',
      submit: '创建',
      done: '用户 {name} 已创建',
      taken: '该登录名已被使用',
    },
  },
  approvals: {
    title: '审批',
    hint: '修改申请、困难报警和归属申诉都在这里处理',
    tabs: {
      amendments: '修改申请', // UI.md
      alarms: '困难报警', // UI.md
      disputes: '归属申诉', // UI.md
    },
    field: '修改项',
    before: '原值',
    after: '改为',
    contacts: '联系人',
    reason: '修改原因：',
    askedBy: '{name} 于 {at} 申请',
    approve: '批准', // UI.md
    reject: '驳回', // UI.md
    confirm: '确定', // UI.md
    rejectTitle: '驳回修改申请',
    rejectNote: '驳回原因（会告知业务员）',
    approved: '已批准 {name} 的修改，资料已更新',
    rejected: '已驳回 {name} 的修改申请',
    noAmendments: '没有待审批的修改申请',
    handle: '处理', // UI.md
    raisedBy: '{name} 于 {at} 报警',
    alarmReason: '遇到的困难：',
    noAlarms: '没有待处理的困难报警',
    alarmTitle: '处理困难报警：{name}',
    owner: '负责人：',
    recentFollowups: '最近的跟进',
    decision: '处理决定',
    decisions: {
      continue: '继续跟进', // UI.md
      reassign: '转给他人', // UI.md
      abandon: '放弃', // UI.md
    },
    newOwner: '接手业务员',
    pickRep: '选择业务员',
    verified: '核实结果（电话核实客户是否真实）',
    verdicts: {
      real: '真实', // UI.md
      fake: '虚假', // UI.md
      unchecked: '未核实', // UI.md
    },
    note: '说明：',
    alarmDone: '{name} 的报警已处理',
    filedBy: '{name} 于 {at} 申诉，当前负责人 {owner}',
    noDisputes: '没有待处理的归属申诉',
    disputeTitle: '处理归属申诉：{name}',
    claimantSide: '申诉方',
    ownerSide: '负责方',
    noContacts: '负责人没有登记联系人',
    verifiedLevel: '核实后的决策权',
    claimantLevel: '申诉方决策权',
    ownerLevel: '负责方决策权',
    noLevel: '0 · 无联系人',
    winner: '客户归属',
    disputeDone: '{name} 的申诉已处理',
  },
  forecast: {
    title: '隐形业绩', // UI.md
    subtitle: '按跟踪阶段加权的下月业绩预测',
    total: '加权业绩',
    reliable: '数据充足', // UI.md
    unreliable: '数据不足', // UI.md
    reliableHint: '25%–90% 阶段有 {n} 个有效客户（至少需要 {min} 个）',
    calibratedTitle: '按团队历史校准',
    calibratedHint: '方法 {method}，样本 {n}',
    funnel: '阶段漏斗',
    funnelLabel: '各阶段客户数量漏斗图',
    stage: '阶段',
    probability: '成交概率',
    count: '客户数',
    value: '预计金额',
    weighted: '加权金额',
    active: '计入预测',
    room: {
      scope: '预测范围',
      company: '全公司',
      myTeam: '本团队',
      ofRep: '业务员：{name}',
      back: '返回团队',
      byRep: '按业务员',
      byTeam: '按团队',
      name: '名称',
      calibrated: '历史校准',
      configured: '按阶段概率',
      actual: '实际成交',
      activeCount: '有效客户',
      reliability: '可靠性',
      nobody: '暂无成员',
      trend: '每周趋势',
      trendLabel: '每周预测趋势图',
      noHistory: '还没有每周记录（每周一自动记录一次）',
      backtest: '预测回测',
      backtestLabel: '预测与实际成交的月度对比图',
      backtestHint: '过去 {n} 个月的加权误差：按阶段概率 {configured}，历史校准 {calibrated}',
      backtestBusy: '回测正在计算（需要回放全部历史），稍后自动显示',
      noBacktest: '暂无回测：已成交或已丢单的历史客户还太少',
      export: '导出 Excel',
      sheetStages: '阶段',
    },
  },
  errors: {
    network: '无法连接服务器，请检查网络后重试',
    internal_error: '服务器出错了，请稍后再试',
    service_unavailable: '服务暂时不可用，请稍后再试',
    unauthenticated: '请先登录',
    invalid_token: '登录状态已失效，请重新登录',
    token_expired: '登录已过期，请重新登录',
    invalid_credentials: '用户名或密码错误',
    too_many_attempts: '尝试次数过多，请稍后再试',
    forbidden: '您没有权限进行此操作',
    not_found: '内容不存在，或您无权查看',
    invalid_fields: '有些内容填写不正确',
    malformed_json: '请求格式错误',
    payload_too_large: '内容太长了',
    method_not_allowed: '不支持此操作',
    duplicate_customer: '该客户已被录入，不能重复录入',
    records_are_immutable: '客户资料录入后不能自行修改，请申请修改',
    not_owner: '只有负责人可以这样操作',
    not_in_pool: '该客户不在公海中',
    in_pool: '该客户在公海中，请先认领',
    already_owner: '您已经是该客户的负责人',
    read_limit: '本小时打开的不同客户已达上限，{minutes} 分钟后可以继续（本小时打开过的客户仍可查看）',
    claim_first: '公海客户认领后才能查看跟进记录',
    not_your_team: '该用户不在你的团队',
    alarm_required: '放弃客户前需要先困难报警，并由经理同意放弃',
    alarm_open: '该客户已有一条待处理的困难报警',
    alarm_not_open: '该报警已处理',
    alarm_stale: '客户已易主，该报警已作废',
    amendment_not_pending: '该修改申请已处理',
    amendment_stale: '客户已易主，该修改申请已作废',
    dispute_open: '您已对该客户提出申诉',
    dispute_not_open: '该申诉已处理',
    dispute_stale: '客户已易主，该申诉已作废',
    owner_changed: '客户负责人已变更，请刷新后重试',
    own_entry: '不能对自己的内容这样操作',
    not_pending: '只能修改待提醒的提醒',
    managed_reminder: '该提醒由系统管理，不能修改',
    busy: '正在处理中，请稍后再试',
    edit_conflict: '内容已被他人修改，请刷新后重试',
    not_author: '只有作者可以修改',
    not_a_draft: '该草稿已处理',
    not_active: '账号已停用',
    not_allowed: '不允许此操作',
    name_log_full: '该公司名称的记录过多，请联系管理员',
    username_taken: '用户名已被占用',
    http: '请求失败（{status}）',
  },
  fieldErrors: {
    required: '必填',
    tooLong: '最多 {n} 个字',
    tooShort: '至少 {n} 个字',
    notPhone: '不是有效的电话号码',
    incompletePhone: '电话号码不完整',
    landline: '固定电话请加区号',
    notDay: '请按“月-日”填写真实日期，例如 03-15',
    creditLength: '统一社会信用代码应为 18 位',
    creditChars: '统一社会信用代码包含无效字符',
    creditArea: '统一社会信用代码的第 3–8 位应为行政区划代码',
    creditCheck: '统一社会信用代码校验位不正确',
    notEmail: '不是有效的邮箱地址',
    emailDomain: '邮箱域名无效',
    inPast: '时间已经过去了',
    noCustomer: '客户不存在',
    control: '包含无效字符',
    tooLarge: '金额太大',
    negative: '不能为负数',
    decimals: '最多两位小数',
    notNumber: '请填写数字',
    unknownField: '未知字段',
    notInStages: '不在阶段列表中',
    nothing: '没有任何变化',
    keepsName: '公司名称不能修改',
    letters: '必须包含文字或数字',
    number: '第 {i} 项：{why}',
    range: '应在 {min} 到 {max} 之间',
    unknownZone: '未知时区',
    ruleWinner: '决策权更高的一方胜出：应归{side}（申诉方 {claimant}，负责方 {owner}）',
    sides: { claimant: '申诉方', owner: '负责方' },
    stageTwice: '阶段 {n}% 与第 {row} 行重复',
    labelTwice: '名称“{label}”与第 {row} 行重复',
    claimantOrOwner: '只能判给申诉方或负责方',
    choose: '请选择',
  },
}
