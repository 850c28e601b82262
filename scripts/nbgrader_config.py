"""nbgrader configuration for a student's own environment (a laptop's .venv or conda
environment): scripts/venv.sh copies it to ``<environment>/etc/jupyter/nbgrader_config.py``,
where JupyterLab's Validate button and ``nbgrader validate`` read it from any folder.

Without it nbgrader gives a cell 30 s at Validate, and notebook 3's scoring cell (the saved
model on public held-out maps) can take longer on a laptop's CPU. With it Validate runs
each cell under the grader's own limit (crsky.limits), as on the course's hub."""

from crsky.limits import CELL_TIMEOUT_S

c = get_config()  # noqa: F821 (provided by nbgrader)

c.Execute.timeout = CELL_TIMEOUT_S
