"""nbgrader configuration added for instructors (their pods have JUPYTER_CONFIG_PATH pointing at
this folder): the course folder is a clone of the course repository in the instructor's home,
with its own grading/nbgrader_config.py; the exchange stays the shared one."""

import os

c = get_config()  # noqa: F821 (provided by nbgrader)

course = os.environ.get("CRSKY_COURSE_ROOT", os.path.expanduser("~/crsky"))
repo_config = os.path.join(course, "grading", "nbgrader_config.py")
if os.path.isfile(repo_config):
    load_subconfig(repo_config)  # noqa: F821 (provided by traitlets): source, release, gradebook, timeouts
# The course's own config keeps its exchange inside the clone unless NBGRADER_EXCHANGE_ROOT is
# set; on the hub the shared one always wins.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = os.environ.get("CRSKY_COURSE_ID", "crsky")
