"""The principals the customers unit tests act as: two teams, south and north."""

from services.common.principal import Principal

REP = Principal("rep-zhang", "rep", "team-south", "张伟")
REP2 = Principal("rep-li", "rep", "team-south", "李娜")
OTHER_REP = Principal("rep-zhao", "rep", "team-north", "赵磊")
MANAGER = Principal("mgr-wang", "manager", "team-south", "王经理")
OTHER_MANAGER = Principal("mgr-sun", "manager", "team-north", "孙经理")
ADMIN = Principal("admin-1", "admin", None, "管理员")
