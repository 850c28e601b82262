"""nbgrader configuration of the course. The repository root is the course directory:
``solutions/`` holds the instructor notebooks (nbgrader's source) and ``notebooks/`` the
student notebooks (the release); a class's submissions and the gradebook live in
``grading/course/`` (ignored by git)."""

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds, IgnorePattern,
                                    LimitOutput, OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

from crsky import limits
from crsky.grading.nbgrader_steps import (FlagForReview, ForgetUnknownCells, ProtectedExecute, ScoreSavedModel,
                                          StartScoring)
from crsky.grading.seed import DEFAULT_SEED_FILE

c = get_config()  # noqa: F821 (provided by nbgrader)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE = os.path.join(ROOT, "grading", "course")
try:  # the gradebook's folder: git keeps no empty folder and nbgrader creates none (a fresh clone lacks it)
    os.makedirs(COURSE, exist_ok=True)
except OSError:  # a read-only checkout (a grading worker's) is given its gradebook elsewhere
    pass

c.CourseDirectory.course_id = "crsky"
c.CourseDirectory.root = ROOT
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = os.path.join(COURSE, "submitted")
c.CourseDirectory.autograded_directory = os.path.join(COURSE, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(COURSE, "feedback")
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE, "gradebook.db")
# Students' files beside a notebook (the trained dgcnn.keras) must reach the autograder: only
# editor and cache clutter is ignored. Never leave a trained model in solutions/: it would be released.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "data"]
# The exchange students fetch from and submit to: on a JupyterHub a shared volume
# (NBGRADER_EXCHANGE_ROOT, see docs/jupyterhub.md); on one machine a folder of the class files.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE_ROOT") or os.path.join(COURSE, "exchange")

# Every cell has at most this many seconds at autograde (an infinite loop costs one cell), and
# the whole notebook at most TASK_TIMEOUT_S.
c.Execute.timeout = limits.CELL_TIMEOUT_S
c.ProtectedExecute.timeout = limits.CELL_TIMEOUT_S
c.ProtectedExecute.task_timeout = limits.TASK_TIMEOUT_S
c.ExecutePreprocessor.kernel_name = "python3"
# Autograde, from the command line, the formgrader's button and `python -m crsky.grading`
# alike: nbgrader's own steps, with its Execute replaced by the protected test run in the
# sandbox (crsky/grading/nbgrader_steps.py), the saved model scored outside the student's code,
# and notebooks whose code changed what the tests rely on held for a person's review.
c.Autograde.sanitize_preprocessors = [
    ClearOutput, DeduplicateIds, OverwriteKernelspec, ForgetUnknownCells, OverwriteCells, CheckCellMetadata,
]
# StartScoring begins scoring the saved model while ProtectedExecute runs the notebook;
# ScoreSavedModel collects the result (both take ScoreSavedModel's settings)
c.Autograde.autograde_preprocessors = [
    StartScoring, ProtectedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, ScoreSavedModel,
    SaveAutoGrades, FlagForReview, AssignLatePenalties, CheckCellMetadata,
]
# nbgrader's own commands simulate the held-out maps from the instructor's seed file
# (python -m crsky.grading.seed new); the pipeline passes its own maps instead.
c.ScoreSavedModel.seed_file = os.environ.get("CRSKY_SEED_FILE") or str(DEFAULT_SEED_FILE.expanduser())
# A test cell a student deleted is put back from the gradebook (nbgrader's default would
# score it 0 without a word).
c.OverwriteCells.add_missing_cells = True
# The student's trained model is theirs: never replaced by a file from the source folder.
c.Autograde.exclude_overwriting = {"03_training": ["dgcnn.keras"], "05_sources": ["members.keras"]}
# Feedback pages show each test cell's name, points and failure message, never its hidden
# tests (nbgrader's own feedback would print their code): nbgrader's two steps with
# crsky.grading.hidden.HideHiddenTests between them. `python -m crsky.grading` reads this line too.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import GetGrades  # noqa: E402

from crsky.grading.hidden import HideHiddenTests  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
