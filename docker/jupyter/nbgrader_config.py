"""nbgrader configuration for everyone in the course image (students and instructors): the
course id and the exchange, a folder every user pod mounts from one shared volume. Installed
into the environment's Jupyter config folder (``<prefix>/etc/jupyter``) by install_course.sh."""

import os

from crsky.limits import CELL_TIMEOUT_S

c = get_config()  # noqa: F821 (provided by nbgrader)

c.CourseDirectory.course_id = os.environ.get("CRSKY_COURSE_ID", "crsky")
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT", "/srv/nbgrader/exchange")
# The exchange is one folder for the course: /srv/nbgrader/exchange/<course id>/{outbound,inbound,feedback}.
c.Exchange.path_includes_course = False
# The Validate button runs the notebook as the grader does (training skipped, see
# crsky.course.grading_run); the same per-cell limit as autograde (crsky.limits).
c.Execute.timeout = CELL_TIMEOUT_S
