"""The honest corpus: correct answers written the ways students write them.

Each :class:`corpus.Variant` here is one student's correct work, written in another way
than the course's answer: loops instead of array operations, a Keras layer of their own,
helper functions in cells of their own, IPython magics and shell escapes, print debugging,
plots and warnings in the answer cells, type hints, classes, ``functools``, extra cells
of exploration that fail or rebind the data. Every one of them must get full points on
every autograded test and must not be flagged for review (tests/test_corpus.py): a grade
must never depend on how a correct answer is written.
"""

import textwrap

from corpus import Variant


def _src(text):
    return textwrap.dedent(text).strip("\n") + "\n"


VARIANTS = []


def _add(**kwargs):
    kwargs.setdefault("answers", {})  # solution cells not named keep the course's answer
    VARIANTS.append(Variant(**kwargs))


# ============================================================================ 01_sky
_add(name="o01_loops", assignment="01_sky", note="math and explicit loops instead of array operations",
     answers={"to_lonlat": _src('''
         import math

         def to_lonlat(vectors):
             """Galactic longitude and latitude (degrees) of unit vectors (..., 3)."""
             flat = np.asarray(vectors, dtype=float).reshape(-1, 3)
             lon, lat = [], []
             for vx, vy, vz in flat:
                 lon.append(math.degrees(math.atan2(vy, vx)))
                 lat.append(math.degrees(math.asin(max(-1.0, min(1.0, vz)))))
             shape = np.shape(vectors)[:-1]
             return np.array(lon).reshape(shape), np.array(lat).reshape(shape)
     '''), "count_close_pairs": _src('''
         def count_close_pairs(sky_map, psi_deg):
             """Number of pairs of cosmic rays closer than psi_deg degrees in one map (P, 3 or 4)."""
             v = np.asarray(sky_map, dtype=float)[:, :3]
             limit = np.cos(np.radians(psi_deg))
             count = 0
             for i in range(len(v) - 1):
                 dots = v[i + 1:] @ v[i]
                 count += int(np.sum(dots > limit))
             return count
     ''')})
_add(name="o01_cell_magic_time", assignment="01_sky", note="%%time on the answer cells, %time on a line",
     answers={"to_lonlat": _src('''
         %%time
         def to_lonlat(vectors):
             vectors = np.asarray(vectors, dtype=float)
             lon = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0]))
             lat = np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0)))
             return lon, lat
     '''), "count_close_pairs": _src('''
         %%time
         def count_close_pairs(sky_map, psi_deg):
             vectors = np.asarray(sky_map)[:, :3].astype(float)
             cosine = vectors @ vectors.T
             i, j = np.triu_indices(len(vectors), k=1)
             return int(np.count_nonzero(cosine[i, j] > np.cos(np.radians(psi_deg))))

         %time print(count_close_pairs(x[0], 5.0))
     ''')})
_add(name="o01_shell_and_os", assignment="01_sky", note="!ls, !pwd and os.path checks in the answer cells",
     answers={"to_lonlat": _src('''
         import os
         !ls -la
         print("working folder:", os.getcwd(), "a trained model here:", os.path.exists("dgcnn.keras"))
         files = !ls
         print(files)

         def to_lonlat(vectors):
             vectors = np.asarray(vectors, dtype=float)
             lon = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0]))
             lat = np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0)))
             return lon, lat
     '''), "count_close_pairs": _src('''
         !pwd
         if os.path.isdir("../03_training"):
             print(os.listdir("../03_training"))

         def count_close_pairs(sky_map, psi_deg):
             vectors = np.asarray(sky_map)[:, :3].astype(float)
             cosine = vectors @ vectors.T
             i, j = np.triu_indices(len(vectors), k=1)
             return int(np.count_nonzero(cosine[i, j] > np.cos(np.radians(psi_deg))))
     ''')})
_add(name="o01_helper_cells", assignment="01_sky",
     note="helpers in cells of their own: one before the answer, one between the answer and its test; "
          "count_close_pairs uses a helper of the to_lonlat cell",
     extra_cells=[("before:to_lonlat", _src('''
         def xyz(vectors):
             """The three components of (..., 3) vectors."""
             vectors = np.asarray(vectors, dtype=float)
             return vectors[..., 0], vectors[..., 1], vectors[..., 2]
     ''')), ("after:to_lonlat", _src('''
         def clipped_arcsin_deg(z):
             return np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))
     '''))],
     answers={"to_lonlat": _src('''
         def unit(sky_map):
             v = np.asarray(sky_map, dtype=float)[:, :3]
             return v / np.linalg.norm(v, axis=1, keepdims=True)

         def to_lonlat(vectors):
             vx, vy, vz = xyz(vectors)
             return np.degrees(np.arctan2(vy, vx)), clipped_arcsin_deg(vz)
     '''), "count_close_pairs": _src('''
         def count_close_pairs(sky_map, psi_deg):
             v = unit(sky_map)
             return int(np.count_nonzero(np.triu(v @ v.T > np.cos(np.radians(psi_deg)), k=1)))
     ''')})
_add(name="o01_lambdas_functools", assignment="01_sky", note="lambdas, functools.partial and functools.reduce",
     answers={"to_lonlat": _src('''
         import functools

         _deg = functools.partial(np.degrees)
         to_lonlat = lambda vectors: (_deg(np.arctan2(np.asarray(vectors, float)[..., 1], np.asarray(vectors, float)[..., 0])),
                                      _deg(np.arcsin(np.clip(np.asarray(vectors, float)[..., 2], -1, 1))))
     '''), "count_close_pairs": _src('''
         def count_close_pairs(sky_map, psi_deg):
             v = np.asarray(sky_map, dtype=float)[:, :3]
             close = v @ v.T > np.cos(np.radians(psi_deg))
             rows = (int(np.count_nonzero(close[i, i + 1:])) for i in range(len(v)))
             return functools.reduce(lambda a, b: a + b, rows, 0)
     ''')})
_add(name="o01_class_static_methods", assignment="01_sky", note="a class with static methods and type hints",
     answers={"to_lonlat": _src('''
         from __future__ import annotations


         class Sky:
             """Conversions on the sphere."""

             @staticmethod
             def lonlat(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                 v = np.asarray(vectors, dtype=np.float64)
                 return (np.rad2deg(np.arctan2(v[..., 1], v[..., 0])),
                         np.rad2deg(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1]))))

             @classmethod
             def pairs(cls, sky_map: np.ndarray, psi_deg: float) -> int:
                 v = np.asarray(sky_map, dtype=np.float64)[:, :3]
                 angles = np.degrees(np.arccos(np.clip(v @ v.T, -1, 1)))
                 return int((np.sum(angles < psi_deg) - len(v)) // 2)


         def to_lonlat(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
             return Sky.lonlat(vectors)
     '''), "count_close_pairs": _src('''
         def count_close_pairs(sky_map: np.ndarray, psi_deg: float) -> int:
             return Sky.pairs(sky_map, psi_deg)
     ''')})
_add(name="o01_print_plot_warn", assignment="01_sky",
     note="print debugging, a matplotlib figure, %matplotlib inline and a warning in the answer cells",
     answers={"to_lonlat": _src('''
         %matplotlib inline
         import warnings

         def to_lonlat(vectors):
             vectors = np.asarray(vectors, dtype=float)
             if not np.allclose(np.linalg.norm(vectors, axis=-1), 1.0, atol=1e-6):
                 warnings.warn("not unit vectors")
             lon = np.degrees(np.arctan2(vectors[..., 1], vectors[..., 0]))
             lat = np.degrees(np.arcsin(np.clip(vectors[..., 2], -1.0, 1.0)))
             return lon, lat

         print("shape of one map:", x[0].shape)
         lon, lat = to_lonlat(x[0, :, :3])
         print("first cosmic ray:", lon[0], lat[0], "range:", lon.min(), lon.max())
         plt.figure(figsize=(6, 3))
         plt.scatter(lon, lat, s=2)
         plt.xlabel("longitude")
         plt.ylabel("latitude")
         plt.show()
         warnings.warn("I am not sure about the sign of the longitude")
     '''), "count_close_pairs": _src('''
         def count_close_pairs(sky_map, psi_deg):
             vectors = np.asarray(sky_map)[:, :3].astype(float)
             cosine = vectors @ vectors.T
             i, j = np.triu_indices(len(vectors), k=1)
             return int(np.count_nonzero(cosine[i, j] > np.cos(np.radians(psi_deg))))

         three = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
         expected = 0
         print(count_close_pairs(three, 5.0), "pairs, expected", expected)
         counts = [count_close_pairs(x[m], 10.0) for m in range(5)]
         fig, ax = plt.subplots()
         ax.hist(counts)
         plt.close(fig)
     ''')})
_add(name="o01_scipy_einsum", assignment="01_sky", note="scipy.spatial.distance and np.einsum",
     answers={"to_lonlat": _src('''
         def to_lonlat(vectors):
             v = np.asarray(vectors, dtype=float)
             r_xy = np.sqrt(np.einsum("...i,...i->...", v[..., :2], v[..., :2]))
             return np.degrees(np.arctan2(v[..., 1], v[..., 0])), np.degrees(np.arctan2(v[..., 2], r_xy))
     '''), "count_close_pairs": _src('''
         from scipy.spatial.distance import pdist

         def count_close_pairs(sky_map, psi_deg):
             cosine = 1.0 - pdist(np.asarray(sky_map, dtype=float)[:, :3], "cosine")
             return int((cosine > np.cos(np.deg2rad(psi_deg))).sum())
     ''')})
_add(name="o01_reimports_and_globals", assignment="01_sky",
     note="imports again and in another order inside the answer, module-level constants, names the tests use too",
     answers={"to_lonlat": _src('''
         from numpy import arcsin, arctan2, clip, degrees
         import numpy
         import numpy as np
         import sys, os

         DEG = 180.0 / numpy.pi

         def to_lonlat(vectors):
             v = numpy.asarray(vectors, dtype=float)
             return arctan2(v[..., 1], v[..., 0]) * DEG, degrees(arcsin(clip(v[..., 2], -1.0, 1.0)))

         lon, lat = to_lonlat(x[0, :, :3])  # a quick check with the names the test uses too
         rng = np.random.default_rng(0)
         vectors = rng.normal(size=(3, 3))
     '''), "count_close_pairs": _src('''
         from numpy import cos, radians

         def count_close_pairs(sky_map, psi_deg):
             v = np.asarray(sky_map)[:, :3].astype(float)
             return int(np.count_nonzero(np.triu(v @ v.T > cos(radians(psi_deg)), 1)))

         iso_counts = count_close_pairs(x[0], 10.0)
         expected = isotropic_expectation(10.0)
         print(iso_counts, expected)
     ''')})
_add(name="o01_reslice_data", assignment="01_sky",
     note="x, y = x[:100], y[:100] in an answer cell (fewer maps to look at) and x rebound in an exploration cell",
     extra_cells=[("after:count_close_pairs", "x = x[:3]\ny = y[:3]\nprint(len(x))\n")],
     answers={"count_close_pairs": _src('''
         x, y = x[:100], y[:100]

         def count_close_pairs(sky_map, psi_deg):
             vectors = np.asarray(sky_map)[:, :3].astype(float)
             cosine = vectors @ vectors.T
             i, j = np.triu_indices(len(vectors), k=1)
             return int(np.count_nonzero(cosine[i, j] > np.cos(np.radians(psi_deg))))
     ''')})
_add(name="o01_exploration_cells", assignment="01_sky",
     note="exploration cells that fail, loop forever, patch numpy or shell out: none of them is run or flagged",
     extra_cells=[("after:to_lonlat", "to_lonlat(np.array([1, 0]))  # fails: not 3-vectors\n"),
                  ("after:to_lonlat", "while True:  # forgot to stop this one\n    pass\n"),
                  ("before:count_close_pairs", "np.allclose = lambda *a, **k: True  # trying things out\n"),
                  ("end", "!pip install healpy\n%timeit count_close_pairs(x[0], 5.0)\n"),
                  ("end", "import builtins\nbuiltins.len = lambda v: 0\n")])
_add(name="o01_dataclass_generator", assignment="01_sky", note="a dataclass, a generator and a while loop",
     answers={"to_lonlat": _src('''
         import dataclasses


         @dataclasses.dataclass(frozen=True)
         class Direction:
             x: np.ndarray
             y: np.ndarray
             z: np.ndarray

             @property
             def lon(self):
                 return np.degrees(np.arctan2(self.y, self.x))

             @property
             def lat(self):
                 return np.degrees(np.arcsin(np.clip(self.z, -1, 1)))


         def to_lonlat(vectors):
             d = Direction(*np.moveaxis(np.asarray(vectors, dtype=float), -1, 0))
             return d.lon, d.lat
     '''), "count_close_pairs": _src('''
         def _rows(v):
             i = 0
             while i < len(v):
                 yield v[i + 1:] @ v[i]
                 i += 1

         def count_close_pairs(sky_map, psi_deg):
             v = np.asarray(sky_map, dtype=float)[:, :3]
             return sum(int((row > np.cos(np.radians(psi_deg))).sum()) for row in _rows(v))
     ''')})
_add(name="o01_shadowed_builtin_names", assignment="01_sky",
     note="a student's own variables named like built-ins (sum, max, input) in the answer cells",
     answers={"count_close_pairs": _src('''
         input = x[0]
         max = 10.0

         def count_close_pairs(sky_map, psi_deg):
             v = np.asarray(sky_map, dtype=float)[:, :3]
             sum = 0
             for row in np.triu(v @ v.T > np.cos(np.radians(psi_deg)), k=1):
                 sum += int(row.sum())
             return sum

         print(count_close_pairs(input, max))
     ''')})

# ========================================================================= 02_kernel
_KERNEL_DOC = '"""Kernel network h(x_i, x_j): a list of two tensors (None, C) -> tensor (None, nodes)."""'
_add(name="o02_layer_subclass", assignment="02_kernel",
     note="a keras.layers.Layer subclass of the student's own that makes the edge features, inside the kernel",
     answers={"kernel_nn": _src('''
         class EdgeFeatures(keras.layers.Layer):
             """[x_i, x_j - x_i] for each edge."""

             def call(self, inputs):
                 x_i, x_j = inputs
                 return keras.ops.concatenate([x_i, keras.ops.subtract(x_j, x_i)], axis=-1)

             def compute_output_shape(self, input_shape):
                 return (*input_shape[0][:-1], 2 * input_shape[0][-1])


         def kernel_nn(data, nodes=16):
             x = EdgeFeatures()(data)
             for _ in range(2):
                 x = layers.Dense(nodes, activation="relu")(x)
             return layers.Dense(nodes)(x)
     ''')})
_add(name="o02_ops_helpers_hints", assignment="02_kernel",
     note="keras.ops instead of layers for the edge features, a helper cell with type hints, %time and print",
     extra_cells=[("before:kernel_nn", _src('''
         from typing import Sequence


         def mlp(x, widths: Sequence[int], activation: str = "gelu"):
             """Dense layers of the given widths, each followed by LayerNormalization."""
             for width in widths:
                 x = layers.Dense(width, activation=activation)(x)
                 x = layers.LayerNormalization()(x)
             return x
     '''))],
     answers={"kernel_nn": _src('''
         def kernel_nn(data: list, nodes: int = 16):
             x_i, x_j = data
             x = keras.ops.concatenate([x_i, x_j - x_i, x_i * x_j], axis=-1)
             return mlp(x, [nodes] * 3)

         %time out = kernel_nn([keras.Input((4,)), keras.Input((4,))])
         print("kernel output:", out.shape)
     ''')})
_add(name="o02_functools_dropout", assignment="02_kernel",
     note="functools.reduce over a list of layers, Dropout, a warning and an !nvidia-smi",
     answers={"kernel_nn": _src('''
         import functools
         import warnings

         !nvidia-smi || echo "no GPU here"
         warnings.warn("training on a CPU will be slow")

         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             stack = [layers.Dense(nodes, activation="relu"), layers.Dropout(0.1),
                      layers.Dense(nodes, activation="relu"), layers.Dense(nodes)]
             edge = layers.Concatenate()([x_i, layers.Subtract()([x_j, x_i])])
             return functools.reduce(lambda x, layer: layer(x), stack, edge)
     ''')})
_add(name="o02_check_cells", assignment="02_kernel",
     note="the answer cell tries its kernel with the names the tests use (x_i, x_j, out, kernel); a plot; "
          "exploration cells that fail",
     extra_cells=[("after:kernel_nn", "kernel_nn([points, features])  # fails: not a list of two (None, C)\n"),
                  ("after:kernel_nn", "features = features[:1]\npoints = None\n")],
     answers={"kernel_nn": _src('''
         import matplotlib.pyplot as plt

         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_j, x_i])])
             for width in (nodes, nodes):
                 x = layers.Dense(width, use_bias=False)(x)
                 x = layers.BatchNormalization()(x)
                 x = layers.Activation("relu")(x)
             return x

         x_i, x_j = keras.Input((4,)), keras.Input((4,))
         out = kernel_nn([x_i, x_j], nodes=8)
         kernel = keras.Model([x_i, x_j], out)
         kernel.summary()
         rng = np.random.default_rng(0)
         a, b, c = (rng.normal(size=(32, 4)).astype("float32") for _ in range(3))
         plt.hist(np.asarray(kernel([a, b])).ravel(), bins=30)
         plt.show()
     ''')})

# ======================================================================= 03_training
_add(name="o03_other_architecture", assignment="03_training",
     note="another valid DGCNN: two EdgeConvs (sky, then feature space), max pooling, a Dense head with Dropout; "
          "compile with objects instead of strings; permute with rng.permuted",
     answers={"build_dgcnn": _src('''
         def build_dgcnn():
             points = keras.Input(shape=(500, 3))
             features = keras.Input(shape=(500, 4))
             x = EnergyScaling()(features)
             x = EdgeConv(lambda a: textbook_kernel(a, nodes=16), next_neighbors=10)([points, x])
             x = layers.Activation("relu")(x)
             x = EdgeConv(lambda a: textbook_kernel(a, nodes=24), next_neighbors=10)([x, x])
             x = layers.Activation("relu")(x)
             x = layers.GlobalMaxPooling1D()(x)
             x = layers.Dense(16, activation="relu")(x)
             x = layers.Dropout(0.2)(x)
             return keras.Model(inputs=[points, features], outputs=layers.Dense(2, activation="softmax")(x))

         print(f"{build_dgcnn().count_params():,} parameters")
     '''), "compile_for_training": _src('''
         def compile_for_training(model, steps, learning_rate=3e-3):
             schedule = keras.optimizers.schedules.CosineDecay(initial_learning_rate=learning_rate, decay_steps=steps,
                                                               alpha=0.0)
             model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                           loss=keras.losses.CategoricalCrossentropy(),
                           metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
     '''), "permute_energies": _src('''
         def permute_energies(x, rng):
             out = x.copy()
             out[:, :, 3] = rng.permuted(out[:, :, 3], axis=1)
             return out
     ''')})
_add(name="o03_loops_reslice", assignment="03_training",
     note="x_train, y_train = x_train[:3000], y_train[:3000] (answer cell and an extra cell), a loop over maps "
          "with rng.permutation, a Layer subclass for the ReLU, os and print",
     extra_cells=[("before:build_dgcnn", "x_train, y_train = x_train[:3000], y_train[:3000]\n")],
     answers={"build_dgcnn": _src('''
         import os

         class ReLU(keras.layers.Layer):
             def call(self, x):
                 return keras.ops.relu(x)


         def build_dgcnn():
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             scaled = EnergyScaling()(features)
             x = ReLU()(EdgeConv(lambda a: edge_kernel(a, nodes=8), next_neighbors=8)([points, scaled]))
             x = ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=16), next_neighbors=8)([points, x]))
             x = ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=32), next_neighbors=8)([x, x]))
             x = layers.GlobalAveragePooling1D()(x)
             return keras.Model([points, features], layers.Dense(2, activation="softmax")(x))

         x_train, y_train = x_train[:3000], y_train[:3000]
         print(len(x_train), "training maps; a saved model here:", os.path.exists("dgcnn.keras"))
     '''), "compile_for_training": _src('''
         def compile_for_training(model, steps, learning_rate=3e-3):
             lr = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
             model.compile(keras.optimizers.Adam(lr), "categorical_crossentropy", metrics=["accuracy"])
             print("compiled:", type(model.optimizer).__name__)
     '''), "permute_energies": _src('''
         def permute_energies(x, rng):
             """A copy of maps (n, P, 4) with the energies shuffled within each map."""
             result = np.empty_like(x)
             for i, sky_map in enumerate(x):
                 result[i] = sky_map
                 result[i, :, 3] = sky_map[rng.permutation(len(sky_map)), 3]
             return result
     ''')})

# ========================================================================== 04_graph
_add(name="o04_loops_add_edge", assignment="04_graph", note="nested loops and add_edge, type hints, print",
     answers={"knn_graph": _src('''
         def knn_graph(indices: np.ndarray) -> nx.DiGraph:
             graph = nx.DiGraph()
             for i in range(len(indices)):
                 graph.add_node(i)
             for i, row in enumerate(indices):
                 for j in row:
                     graph.add_edge(i, int(j))
             return graph

         g = knn_graph(neighbours[0])
         print(g.number_of_nodes(), "nodes,", g.number_of_edges(), "edges")
     ''')})
_add(name="o04_dict_of_lists_plot", assignment="04_graph",
     note="nx.DiGraph from a dict of lists, a degree histogram plotted in the answer cell, a helper cell after it",
     extra_cells=[("after:knn_graph", _src('''
         def as_lists(indices):
             return {i: [int(j) for j in row] for i, row in enumerate(np.asarray(indices))}
     '''))],
     answers={"knn_graph": _src('''
         def knn_graph(indices):
             return nx.DiGraph(as_lists(indices))

         graph = knn_graph(neighbours[0])
         P, k = neighbours[0].shape
         plt.hist([d for _, d in graph.in_degree()], bins=20)
         plt.title("in-degrees")
         plt.show()
     ''')})
_add(name="o04_numpy_edges_magics", assignment="04_graph",
     note="edges from np.repeat and ravel, %%time, !ls of the model's folder",
     answers={"knn_graph": _src('''
         %%time
         !ls ../03_training || true

         def knn_graph(indices):
             indices = np.asarray(indices)
             sources = np.repeat(np.arange(len(indices)), indices.shape[1])
             graph = nx.DiGraph()
             graph.add_nodes_from(range(len(indices)))
             graph.add_edges_from(zip(sources.tolist(), indices.ravel().tolist()))
             return graph
     ''')})

_add(name="o02_keras_ops_numpy_check", assignment="02_kernel",
     note="keras.ops for the edge features and the activations, a numpy check of the kernel's output",
     answers={"kernel_nn": _src("""
         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             x = keras.ops.concatenate([x_i, keras.ops.subtract(x_j, x_i)], axis=-1)
             x = keras.ops.relu(layers.Dense(2 * nodes)(x))
             return keras.ops.tanh(layers.Dense(nodes)(x))

         _a, _b = keras.Input((4,)), keras.Input((4,))
         _kernel = keras.Model([_a, _b], kernel_nn([_a, _b], nodes=8))
         _out = np.asarray(_kernel([np.ones((3, 4), "float32"), np.zeros((3, 4), "float32")]))
         assert _out.shape == (3, 8), _out.shape
     """)})
_add(name="o04_class_builder", assignment="04_graph",
     note="a class with __call__ as the answer, networkx.from_edgelist, a list comprehension",
     answers={"knn_graph": _src("""
         class GraphBuilder:
             def __init__(self, directed=True):
                 self.directed = directed

             def __call__(self, indices):
                 edges = [(i, int(j)) for i, row in enumerate(indices) for j in row]
                 graph = nx.from_edgelist(edges, create_using=nx.DiGraph if self.directed else nx.Graph)
                 graph.add_nodes_from(range(len(indices)))
                 return graph


         knn_graph = GraphBuilder()
     """)})
_add(name="o03_schedule_helper_cell", assignment="03_training",
     note="the schedule made by a helper in a cell of its own, keyword arguments everywhere, a warning; "
          "permutations from argsort in a list comprehension",
     extra_cells=[("before:compile_for_training", _src("""
         import warnings


         def cosine_schedule(start, steps):
             if steps < 10:
                 warnings.warn("very few steps")
             return keras.optimizers.schedules.CosineDecay(initial_learning_rate=start, decay_steps=steps)
     """))],
     answers={"compile_for_training": _src("""
         def compile_for_training(model, steps, learning_rate=3e-3):
             model.compile(optimizer=keras.optimizers.Adam(learning_rate=cosine_schedule(learning_rate, steps)),
                           loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
     """), "permute_energies": _src("""
         def permute_energies(x, rng):
             x = np.asarray(x)
             orders = [np.argsort(rng.random(x.shape[1])) for _ in range(len(x))]
             return np.stack([np.concatenate([m[:, :3], m[order, 3:4]], axis=1) for m, order in zip(x, orders)])
     """)})
_add(name="o01_numpy_functions_only", assignment="01_sky",
     note="np.rad2deg, np.hypot and np.einsum; a cell of exploration that rebinds the set-up's names",
     extra_cells=[("before:to_lonlat", "np = None\nx = None\n")],
     answers={"to_lonlat": _src("""
         def to_lonlat(vectors):
             v = np.asarray(vectors, dtype=float)
             return np.rad2deg(np.arctan2(v[..., 1], v[..., 0])), np.rad2deg(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
     """), "count_close_pairs": _src("""
         def count_close_pairs(sky_map, psi_deg):
             v = np.asarray(sky_map, dtype=float)[:, :3]
             cosine = np.einsum("ik,jk->ij", v, v)
             return int(np.count_nonzero(cosine[np.triu_indices(len(v), 1)] > np.cos(np.deg2rad(psi_deg))))
     """)})

_add(name="o01_old_scan_false_alarms", assignment="01_sky",
     note="what the old static scan flagged in honest work: from os import, sys, type(), globals(), getattr by "
          "name, setattr on the student's own object, a star import, the course package in a check",
     extra_cells=[("after:to_lonlat", "from crsky.sky import vectors_to_lonlat\nvectors_to_lonlat(x[0, :, :3])\n")],
     answers={"to_lonlat": _src("""
         from os import environ
         import sys
         from numpy import *
         from crsky.sky import vectors_to_lonlat

         print(sys.version_info[:2], environ.get("HOME") is not None, type(x))


         class Settings:
             pass


         settings = Settings()
         setattr(settings, "clip", True)


         def to_lonlat(vectors):
             v = asarray(vectors, dtype=float)
             z = clip(v[..., 2], -1.0, 1.0) if getattr(settings, "clip") else v[..., 2]
             return degrees(arctan2(v[..., 1], v[..., 0])), degrees(arcsin(z))

         if "to_lonlat" in globals() and __name__ == "__main__":
             check = vectors_to_lonlat(x[0, :3, :3])
             print(np.allclose(np.radians(to_lonlat(x[0, :3, :3])[1]), check[1]))
     """)})

# ======================================================================= 05_sources
_add(name="o05_conv_head_keras_loss", assignment="05_sources",
     note="labels with np.where; a per-cosmic-ray head made of a 1x1 Conv1D and Flatten, ReLU layers, type "
          "hints; the loss from keras.losses.binary_crossentropy on a column of probabilities",
     answers={"cosmic_ray_labels": _src('''
         def cosmic_ray_labels(source_id: np.ndarray) -> np.ndarray:
             return np.where(np.asarray(source_id) < 0, 0.0, 1.0).astype("float32")
     '''), "build_dgcnn_per_cr": _src('''
         def build_dgcnn_per_cr(k: int = 10) -> keras.Model:
             points, features = keras.Input((500, 3)), keras.Input((500, 4))
             x = EnergyScaling()(features)
             x = layers.ReLU()(EdgeConv(lambda a: edge_kernel(a, nodes=16), next_neighbors=k)([points, x]))
             h = layers.ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=16), next_neighbors=k)([x, x]))
             x = layers.Concatenate()([x, h])
             x = layers.Conv1D(1, 1, activation="sigmoid")(x)   # the same small network on every cosmic ray
             return keras.Model([points, features], layers.Flatten()(x))
     '''), "per_cr_loss": _src('''
         from keras import ops


         def per_cr_loss(targets, probabilities):
             t = ops.reshape(ops.cast(targets, "float32"), (-1, 1))
             p = ops.reshape(ops.cast(probabilities, "float32"), (-1, 1))
             return ops.mean(keras.losses.binary_crossentropy(t, p))  # keras clips p to [1e-7, 1 - 1e-7]
     ''')})
_add(name="o05_layer_subclass_numpy_labels", assignment="05_sources",
     note="labels by comparison and astype in two steps, a Dense head inside a Layer subclass of the student's, "
          "%time around a definition, the loss with explicit clipping and keras.ops.log",
     answers={"cosmic_ray_labels": _src('''
         def cosmic_ray_labels(source_id):
             from_source = np.asarray(source_id) > -1
             return from_source.astype(np.float32)
     '''), "build_dgcnn_per_cr": _src('''
         class PerCosmicRay(keras.layers.Layer):
             """Dense(16, relu) then Dense(1, sigmoid) on each cosmic ray's features: (batch, P, C) -> (batch, P)."""

             def __init__(self, **kwargs):
                 super().__init__(**kwargs)
                 self.hidden = layers.Dense(16, activation="relu")
                 self.out = layers.Dense(1, activation="sigmoid")

             def call(self, x):
                 return keras.ops.squeeze(self.out(self.hidden(x)), axis=-1)


         %time _ = None

         def build_dgcnn_per_cr():
             points = layers.Input((500, 3))
             features = layers.Input((500, 4))
             x = EnergyScaling()(features)
             for i, nodes in enumerate((16, 16)):
                 kernel = edge_kernel if i == 0 else textbook_kernel
                 x = EdgeConv(lambda a, n=nodes, f=kernel: f(a, nodes=n), next_neighbors=8)([points if i == 0 else x, x])
                 x = layers.Activation("relu")(x)
             return keras.Model([points, features], PerCosmicRay()(x))
     '''), "per_cr_loss": _src('''
         from keras import ops


         def per_cr_loss(targets, probabilities):
             eps = 1e-7
             t = ops.cast(ops.reshape(targets, (-1,)), "float32")
             p = ops.clip(ops.cast(ops.reshape(probabilities, (-1,)), "float32"), eps, 1.0 - eps)
             losses = -t * ops.log(p) - (1.0 - t) * ops.log(1.0 - p)
             return ops.sum(losses) / ops.cast(ops.size(losses), "float32")
     ''')})


# ============================================== more honest variants: notebooks 2 to 5
_add(name="o02_sequential_mlp", assignment="02_kernel",
     note="the edge features with Subtract and Concatenate, then the Dense/BatchNormalization/ReLU stack as a "
          "keras.Sequential block applied to them",
     answers={"kernel_nn": _src('''
         def kernel_nn(data, nodes=16):
             """Kernel network h(x_i, x_j): a list of two tensors (None, C) -> tensor (None, nodes)."""
             x_i, x_j = data
             edge = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_j, x_i])])
             stack = []
             for _ in range(3):
                 stack += [layers.Dense(nodes, use_bias=False), layers.BatchNormalization(), layers.ReLU()]
             mlp = keras.Sequential(stack)
             return mlp(edge)
     ''')})
_add(name="o02_mlp_layer_subclass", assignment="02_kernel",
     note="a keras.layers.Layer subclass of the student's that holds the Dense and BatchNormalization layers "
          "(built in __init__, applied in call); the edge features from layers",
     answers={"kernel_nn": _src('''
         class MLP(keras.layers.Layer):
             """Dense -> BatchNormalization -> ReLU, `depth` times, on the last axis."""

             def __init__(self, width, depth=3, **kwargs):
                 super().__init__(**kwargs)
                 self.dense = [layers.Dense(width, use_bias=False) for _ in range(depth)]
                 self.norm = [layers.BatchNormalization() for _ in range(depth)]

             def call(self, x, training=None):
                 for dense, norm in zip(self.dense, self.norm):
                     x = keras.ops.relu(norm(dense(x), training=training))
                 return x


         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             edge = layers.Concatenate()([x_i, layers.Subtract()([x_i, x_j])])
             return MLP(nodes)(edge)
     ''')})
_add(name="o02_clear_session_seed", assignment="02_kernel",
     note="keras.backend.clear_session() and keras.utils.set_random_seed(0) at the top of the answer cell "
          "(the usual Keras hygiene), then a Lambda layer for the edge features",
     answers={"kernel_nn": _src('''
         keras.backend.clear_session()
         keras.utils.set_random_seed(0)


         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             edge = layers.Lambda(lambda pair: keras.ops.concatenate([pair[0], pair[1] - pair[0]], axis=-1))([x_i, x_j])
             x = edge
             for _ in range(3):
                 x = layers.Dense(nodes, use_bias=False)(x)
                 x = layers.BatchNormalization()(x)
                 x = layers.Activation("relu")(x)
             return x
     ''')})
_add(name="o02_lambda_edges_ops", assignment="02_kernel",
     note="a Lambda layer for [x_i, x_j - x_i], Dense layers with activation='relu' and BatchNormalization, "
          "an assert of the student's on the symbolic shape",
     answers={"kernel_nn": _src('''
         def edge_features(pair):
             x_i, x_j = pair
             return keras.ops.concatenate([x_i, keras.ops.subtract(x_j, x_i)], axis=-1)


         def kernel_nn(data: list, nodes: int = 16):
             x = layers.Lambda(edge_features)(list(data))
             for width in (2 * nodes, nodes, nodes):
                 x = layers.BatchNormalization()(layers.Dense(width, activation="relu")(x))
             assert x.shape[-1] == nodes, x.shape
             return x
     ''')})

# 03_training
_add(name="o03_cosine_schedule_class", assignment="03_training",
     note="the cosine decay as a LearningRateSchedule subclass of the student's (keras.ops formula), the loss "
          "as the function keras.losses.categorical_crossentropy; a helper for the EdgeConv blocks in a cell of "
          "its own; energies shuffled with rng.shuffle on a copy, map by map",
     extra_cells=[("before:build_dgcnn", _src('''
         def edgeconv_relu(kernel, nodes, graph, x, k=8):
             """EdgeConv with `kernel` (nodes wide), neighbours searched in `graph`, then a ReLU."""
             y = EdgeConv(lambda a: kernel(a, nodes=nodes, bn_momentum=0.9), next_neighbors=k)([graph, x])
             return layers.ReLU()(y)
     '''))],
     answers={"build_dgcnn": _src('''
         def build_dgcnn():
             points = keras.Input((500, 3), name="points")
             features = keras.Input((500, 4), name="features")
             x = edgeconv_relu(edge_kernel, 8, points, EnergyScaling()(features))
             x = edgeconv_relu(textbook_kernel, 16, points, x)
             x = edgeconv_relu(textbook_kernel, 32, x, x)
             x = layers.GlobalAveragePooling1D()(x)
             return keras.Model(inputs=[points, features], outputs=layers.Dense(2, activation="softmax")(x))
     '''), "compile_for_training": _src('''
         import math


         class CosineToZero(keras.optimizers.schedules.LearningRateSchedule):
             """start * (1 + cos(pi * step / steps)) / 2, and 0 after `steps` steps."""

             def __init__(self, start, steps):
                 self.start, self.steps = float(start), int(steps)

             def __call__(self, step):
                 progress = keras.ops.minimum(keras.ops.cast(step, "float32") / self.steps, 1.0)
                 return self.start * 0.5 * (1.0 + keras.ops.cos(math.pi * progress))

             def get_config(self):
                 return {"start": self.start, "steps": self.steps}


         def compile_for_training(model, steps, learning_rate=3e-3):
             model.compile(optimizer=keras.optimizers.Adam(learning_rate=CosineToZero(learning_rate, steps)),
                           loss=keras.losses.categorical_crossentropy, metrics=["accuracy"],
                           jit_compile=training.fast_jit_compile())
     '''), "permute_energies": _src('''
         def permute_energies(x, rng):
             out = np.copy(x)
             for sky_map in out:
                 energies = sky_map[:, 3].copy()
                 rng.shuffle(energies)
                 sky_map[:, 3] = energies
             return out
     ''')})
_add(name="o03_model_subclass_own_loss", assignment="03_training",
     note="a keras.Model subclass whose __init__ builds the functional graph (keras.ops.relu on the tensors), "
          "the cross-entropy written as a loss function with keras.ops, a per-map rng.permutation index",
     answers={"build_dgcnn": _src('''
         class DGCNN(keras.Model):
             """The DGCNN as a class: the functional graph is built in __init__."""

             def __init__(self, k=8, **kwargs):
                 points = keras.Input((500, 3))
                 features = keras.Input((500, 4))
                 x = EnergyScaling()(features)
                 x = keras.ops.relu(EdgeConv(lambda a: edge_kernel(a, nodes=8, bn_momentum=0.9), next_neighbors=k)([points, x]))
                 x = keras.ops.relu(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=k)([points, x]))
                 x = keras.ops.relu(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=k)([x, x]))
                 probabilities = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(x))
                 super().__init__(inputs=[points, features], outputs=probabilities, **kwargs)


         def build_dgcnn():
             return DGCNN()
     '''), "compile_for_training": _src('''
         from keras import ops


         def cross_entropy(y_true, y_pred):
             """-sum(y log p) over the classes, for one-hot labels."""
             return -ops.sum(y_true * ops.log(ops.clip(y_pred, 1e-7, 1.0 - 1e-7)), axis=-1)


         def compile_for_training(model, steps, learning_rate=3e-3):
             schedule = keras.optimizers.schedules.CosineDecay(initial_learning_rate=learning_rate, decay_steps=steps,
                                                               alpha=0.0)
             model.compile(optimizer=keras.optimizers.Adam(schedule), loss=cross_entropy, metrics=["accuracy"],
                           jit_compile=training.fast_jit_compile())
     '''), "permute_energies": _src('''
         def permute_energies(x, rng):
             x = np.asarray(x)
             out = x.copy()
             for i in range(x.shape[0]):
                 order = rng.permutation(x.shape[1])
                 out[i, :, 3] = x[i, order, 3]
             return out
     ''')})
_add(name="o03_tqdm_progress", assignment="03_training",
     note="a tqdm progress bar over the maps in the permutation loop (a slow loop over 10,000 test maps)",
     answers={"permute_energies": _src('''
         from tqdm.auto import tqdm


         def permute_energies(x, rng):
             out = np.array(x, copy=True)
             for i in tqdm(range(len(out)), desc="permuting energies", leave=False):
                 out[i, :, 3] = rng.permutation(out[i, :, 3])
             return out
     ''')})

# 04_graph
_add(name="o04_adjacency_matrix", assignment="04_graph",
     note="an adjacency matrix filled with fancy indexing and nx.from_numpy_array(create_using=nx.DiGraph); "
          "a docstring, asserts of the student's own",
     answers={"knn_graph": _src('''
         def knn_graph(indices):
             """Directed kNN graph: edge i -> j for every j in row i of `indices` (P, k)."""
             indices = np.asarray(indices, dtype=int)
             P, k = indices.shape
             adjacency = np.zeros((P, P), dtype=int)
             adjacency[np.repeat(np.arange(P), k), indices.ravel()] = 1
             graph = nx.from_numpy_array(adjacency, create_using=nx.DiGraph)
             assert graph.number_of_nodes() == P
             return graph
     ''')})
_add(name="o04_empty_graph_magics", assignment="04_graph",
     note="nx.empty_graph(P, create_using=nx.DiGraph) and add_edges_from with numpy integers; %load_ext "
          "autoreload, %autoreload 2, %config InlineBackend, import os and !ls in the answer cell",
     answers={"knn_graph": _src('''
         %load_ext autoreload
         %autoreload 2
         %config InlineBackend.figure_format = "retina"
         import os
         !ls

         def knn_graph(indices):
             indices = np.asarray(indices)
             graph = nx.empty_graph(len(indices), create_using=nx.DiGraph)
             graph.add_edges_from((i, j) for i in range(len(indices)) for j in indices[i])
             return graph

         print(os.getcwd(), knn_graph(neighbours[0]))
     ''')})

# 05_sources
_add(name="o05_timedistributed_slice", assignment="05_sources",
     note="labels with np.heaviside; the per-cosmic-ray head as TimeDistributed(Dense) and the last axis "
          "dropped with x[..., 0]; the loss from keras.ops.binary_crossentropy on flattened tensors",
     answers={"cosmic_ray_labels": _src('''
         def cosmic_ray_labels(source_id):
             # heaviside(s, 1): 0 for s < 0, 1 for s >= 0
             return np.heaviside(np.asarray(source_id, dtype=float), 1.0).astype(np.float32)
     '''), "build_dgcnn_per_cr": _src('''
         def build_dgcnn_per_cr():
             points = keras.Input((500, 3))
             features = keras.Input((500, 4))
             scaled = EnergyScaling()(features)
             outputs = []
             x, graph = scaled, points
             for i, nodes in enumerate((16, 16, 32)):
                 kernel = edge_kernel if i == 0 else textbook_kernel
                 if i == 2:
                     graph = x  # the last EdgeConv: the dynamic graph
                 x = EdgeConv(lambda a, f=kernel, n=nodes: f(a, nodes=n, bn_momentum=0.9), next_neighbors=8)([graph, x])
                 x = layers.Activation("relu")(x)
                 outputs.append(x)
             x = layers.Concatenate(axis=-1)(outputs)
             x = layers.TimeDistributed(layers.Dense(32, activation="relu"))(x)
             x = layers.TimeDistributed(layers.Dense(1, activation="sigmoid"))(x)
             return keras.Model([points, features], x[..., 0])
     '''), "per_cr_loss": _src('''
         from keras import ops


         def per_cr_loss(targets, probabilities):
             t = ops.reshape(ops.cast(targets, "float32"), (-1,))
             p = ops.reshape(ops.cast(probabilities, "float32"), (-1,))
             return ops.mean(ops.binary_crossentropy(t, p))  # clips p to [1e-7, 1 - 1e-7] itself
     ''')})
_add(name="o05_loops_log1p", assignment="05_sources",
     note="labels from a nested list comprehension; a head of Dense layers in a helper cell, Squeeze by a "
          "Lambda; the loss with log1p(-p), a sum divided by the count, and a print of its value",
     extra_cells=[("before:build_dgcnn_per_cr", _src('''
         def per_cosmic_ray_head(x, widths=(32,)):
             """Dense layers on each cosmic ray's features alone, then one sigmoid output per cosmic ray."""
             for width in widths:
                 x = layers.Dense(width, activation="relu")(x)
             x = layers.Dense(1, activation="sigmoid")(x)
             return layers.Lambda(lambda t: keras.ops.squeeze(t, axis=-1))(x)
     '''))],
     answers={"cosmic_ray_labels": _src('''
         def cosmic_ray_labels(source_id):
             rows = [[1.0 if s >= 0 else 0.0 for s in row] for row in np.asarray(source_id)]
             return np.array(rows, dtype=np.float32).reshape(np.shape(source_id))
     '''), "build_dgcnn_per_cr": _src('''
         def build_dgcnn_per_cr():
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             x1 = layers.ReLU()(EdgeConv(lambda a: edge_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)(
                 [points, EnergyScaling()(features)]))
             x2 = layers.ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x1]))
             x3 = layers.ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x2, x2]))
             return keras.Model([points, features], per_cosmic_ray_head(layers.Concatenate()([x1, x2, x3])))
     '''), "per_cr_loss": _src('''
         from keras import ops


         def per_cr_loss(targets, probabilities):
             t = ops.reshape(ops.cast(targets, "float32"), (-1,))
             p = ops.clip(ops.reshape(ops.cast(probabilities, "float32"), (-1,)), 1e-7, 1 - 1e-7)
             total = -ops.sum(t * ops.log(p) + (1.0 - t) * ops.log1p(-p))
             return total / ops.cast(ops.shape(t)[0], "float32")

         print("loss of a coin flip:", float(per_cr_loss(np.array([[0.0, 1.0]]), np.array([[0.5, 0.5]]))))
     ''')})
_add(name="o02_tf_keras_namespace", assignment="02_kernel",
     note="the layers written as tf.keras.layers (TensorFlow's name for Keras 3), a dict of settings, a docstring",
     answers={"kernel_nn": _src('''
         import tensorflow as tf

         SETTINGS = {"depth": 3, "use_bias": False}


         def kernel_nn(data, nodes=16):
             """Kernel network h(x_i, x_j): a list of two tensors (None, C) -> tensor (None, nodes)."""
             x_i, x_j = data
             x = tf.keras.layers.Concatenate(axis=-1)([x_i, tf.keras.layers.Subtract()([x_j, x_i])])
             for _ in range(SETTINGS["depth"]):
                 x = tf.keras.layers.Dense(nodes, use_bias=SETTINGS["use_bias"], activation="relu")(x)
                 x = tf.keras.layers.BatchNormalization()(x)
             return x
     ''')})
_add(name="o03_neighbor_indices_shared_graph", assignment="03_training",
     note="the sky graph searched once with the course layer's NeighborIndices(points) and shared by the two "
          "sky EdgeConvs ([indices, features], as edgeconv.py documents), the last EdgeConv on [x, x]",
     answers={"build_dgcnn": _src('''
         from edgeconv import NeighborIndices


         def build_dgcnn():
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             sky_graph = NeighborIndices(8)(points)   # one search on the sky for both fixed-graph EdgeConvs
             x = EdgeConv(lambda a: edge_kernel(a, nodes=8, bn_momentum=0.9), next_neighbors=8)([sky_graph, EnergyScaling()(features)])
             x = layers.Activation("relu")(x)
             x = EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([sky_graph, x])
             x = layers.Activation("relu")(x)
             x = EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x, x])
             x = layers.Activation("relu")(x)
             x = layers.GlobalAveragePooling1D()(x)
             return keras.Model([points, features], layers.Dense(2, activation="softmax")(x))
     ''')})
_add(name="o03_metric_alias_acc", assignment="03_training",
     note="metrics=['acc'], Keras's documented short name of the accuracy; everything else as the course's answer",
     answers={"compile_for_training": _src('''
         def compile_for_training(model, steps, learning_rate=3e-3):
             schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
             model.compile(optimizer=keras.optimizers.Adam(schedule), loss="categorical_crossentropy",
                           metrics=["acc"], jit_compile=training.fast_jit_compile())
     ''')})
_add(name="o03_single_tensor_dynamic_setter", assignment="03_training",
     note="the dynamic EdgeConv called on one tensor (EdgeConv(...)(x), as the layer allows), max aggregation, "
          "EdgeConv? in the answer cell; optimizer='adam' with the schedule set on model.optimizer after compile; "
          "np.apply_along_axis(rng.permutation, ...)",
     answers={"build_dgcnn": _src('''
         EdgeConv?

         def build_dgcnn():
             points = keras.Input((500, 3))
             features = keras.Input((500, 4))
             x = EdgeConv(lambda a: edge_kernel(a, nodes=8, bn_momentum=0.9), next_neighbors=8, agg_func="max")(
                 [points, EnergyScaling()(features)])
             x = layers.ReLU()(x)
             x = layers.ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x]))
             x = layers.ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)(x))
             x = layers.GlobalMaxPooling1D()(x)
             return keras.Model([points, features], layers.Dense(2, activation="softmax")(x))
     '''), "compile_for_training": _src('''
         def compile_for_training(model, steps, learning_rate=3e-3):
             model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"],
                           jit_compile=training.fast_jit_compile())
             model.optimizer.learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, steps)
     '''), "permute_energies": _src('''
         def permute_energies(x, rng):
             out = np.array(x)  # np.array copies
             out[..., 3] = np.apply_along_axis(rng.permutation, 1, out[..., 3])
             return out
     ''')})
_add(name="o04_scipy_sparse_pip", assignment="04_graph",
     note="%pip install of networkx (already there) and !pip show, a scipy.sparse adjacency turned into a DiGraph "
          "with nx.from_scipy_sparse_array; a figure saved into a folder of the student's",
     answers={"knn_graph": _src('''
         %pip install -q networkx scipy
         !pip show networkx | head -2
         import os
         import scipy.sparse as sparse


         def knn_graph(indices):
             indices = np.asarray(indices)
             P, k = indices.shape
             rows = np.repeat(np.arange(P), k)
             adjacency = sparse.csr_matrix((np.ones(P * k), (rows, indices.ravel())), shape=(P, P))
             return nx.from_scipy_sparse_array(adjacency, create_using=nx.DiGraph)


         os.makedirs("figures", exist_ok=True)
         plt.figure(figsize=(3, 3))
         plt.hist([d for _, d in knn_graph(neighbours[-1]).in_degree()], bins=15)
         plt.savefig("figures/in_degrees.png")
         plt.close()
     ''')})
_add(name="o05_registered_layer_loss_object", assignment="05_sources",
     note="labels from np.sign(source_id + 1); the head in a custom Layer registered with "
          "@keras.saving.register_keras_serializable (so members.keras loads), Reshape((-1,)); the loss from "
          "a keras.losses.BinaryCrossentropy object on reshaped tensors",
     answers={"cosmic_ray_labels": _src('''
         def cosmic_ray_labels(source_id):
             # -1 -> 0, any source index i >= 0 -> 1
             return np.sign(np.asarray(source_id, dtype=np.int64) + 1).astype(np.float32)
     '''), "build_dgcnn_per_cr": _src('''
         @keras.saving.register_keras_serializable(package="student")
         class PerCosmicRayHead(keras.layers.Layer):
             """Dense(width, relu) then Dense(1, sigmoid) on every cosmic ray alone: (batch, P, C) -> (batch, P, 1)."""

             def __init__(self, width=32, **kwargs):
                 super().__init__(**kwargs)
                 self.width = width
                 self.hidden = layers.Dense(width, activation="relu")
                 self.score = layers.Dense(1, activation="sigmoid")

             def call(self, x):
                 return self.score(self.hidden(x))

             def get_config(self):
                 return {**super().get_config(), "width": self.width}


         def build_dgcnn_per_cr():
             points = keras.Input((500, 3))
             features = keras.Input((500, 4))
             x1 = layers.Activation("relu")(EdgeConv(lambda a: edge_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, EnergyScaling()(features)]))
             x2 = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x1]))
             x3 = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x2, x2]))
             x = PerCosmicRayHead(32)(layers.Concatenate(axis=-1)([x1, x2, x3]))
             return keras.Model([points, features], layers.Reshape((-1,))(x))
     '''), "per_cr_loss": _src('''
         from keras import ops

         _bce = keras.losses.BinaryCrossentropy()  # mean over all entries; clips to [1e-7, 1 - 1e-7]


         def per_cr_loss(targets, probabilities):
             t = ops.reshape(ops.cast(targets, "float32"), (-1, 1))
             p = ops.reshape(ops.cast(probabilities, "float32"), (-1, 1))
             return _bce(t, p)
     ''')})
_add(name="o02_star_import_cell", assignment="02_kernel",
     note="a cell of the student's own with `from keras.layers import *` under the set-up; the kernel written "
          "with the bare names Dense, Concatenate, Subtract, BatchNormalization",
     extra_cells=[("before:kernel_nn", "from keras.layers import *\n")],
     answers={"kernel_nn": _src('''
         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             x = Concatenate(axis=-1)([x_i, Subtract()([x_j, x_i])])
             for _ in range(3):
                 x = Dense(nodes, use_bias=False, activation="relu")(x)
                 x = BatchNormalization()(x)
             return x
     ''')})
_add(name="o03_binary_ce_results_above", assignment="03_training",
     note="loss='binary_crossentropy' on the two one-hot softmax outputs (the same number as the categorical "
          "cross-entropy); the permutation cell prints the test accuracy the notebook computed a few cells above",
     answers={"compile_for_training": _src('''
         def compile_for_training(model, steps, learning_rate=3e-3):
             # two classes: the binary cross-entropy, averaged over the two one-hot outputs, is -log p(true class)
             model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
                           loss="binary_crossentropy", metrics=["accuracy"], jit_compile=training.fast_jit_compile())
     '''), "permute_energies": _src('''
         print(f"the network above: test accuracy {accuracy:.3f}, ROC AUC {auc:.3f}")


         def permute_energies(x, rng):
             out = np.array(x, copy=True)
             out[:, :, 3] = rng.permuted(out[:, :, 3], axis=1)
             return out
     ''')})
_add(name="o05_ops_import_cell", assignment="05_sources",
     note="a cell of the student's own under the set-up with `from keras import ops`; the model drops its "
          "last axis with ops.squeeze on the symbolic tensor",
     extra_cells=[("before:cosmic_ray_labels", "from keras import ops\n")],
     answers={"build_dgcnn_per_cr": _src('''
         def build_dgcnn_per_cr():
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             scaled = EnergyScaling()(features)
             x1 = layers.Activation("relu")(EdgeConv(lambda a: edge_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, scaled]))
             x2 = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x1]))
             x3 = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x2, x2]))
             x = layers.Concatenate(axis=-1)([x1, x2, x3])
             x = layers.Dense(32, activation="relu")(x)
             x = layers.Dense(1, activation="sigmoid")(x)
             return keras.Model([points, features], ops.squeeze(x, axis=-1))
     ''')})
_add(name="o05_results_from_above", assignment="05_sources",
     note="the model's answer cell prints the fraction of source cosmic rays from t_train (computed by the "
          "notebook's cell above it) and uses keras.ops.squeeze directly on the symbolic tensor",
     answers={"build_dgcnn_per_cr": _src('''
         print(f"{t_train.mean():.1%} of the training cosmic rays came from a source")


         def build_dgcnn_per_cr():
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             scaled = EnergyScaling()(features)
             x1 = layers.Activation("relu")(EdgeConv(lambda a: edge_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, scaled]))
             x2 = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x1]))
             x3 = layers.Activation("relu")(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x2, x2]))
             x = layers.Dense(32, activation="relu")(layers.Concatenate(axis=-1)([x1, x2, x3]))
             return keras.Model([points, features], keras.ops.squeeze(layers.Dense(1, activation="sigmoid")(x), axis=-1))
     ''')})
_add(name="o03_smoke_fit_save", assignment="03_training",
     note="the compile cell checks its recipe: two training steps on 8 maps, model.save and keras.models.load_model "
          "of the check, its summary, del and gc.collect()",
     answers={"compile_for_training": _src('''
         import gc
         import os


         def compile_for_training(model, steps, learning_rate=3e-3):
             schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
             model.compile(optimizer=keras.optimizers.Adam(schedule), loss="categorical_crossentropy",
                           metrics=["accuracy"], jit_compile=training.fast_jit_compile())


         check = build_dgcnn()
         compile_for_training(check, steps=2)
         check.fit(model_inputs(x_train[:8]), keras.utils.to_categorical(y_train[:8], 2), batch_size=4, epochs=1, verbose=0)
         print("learning rate after 2 of 2 steps:", float(check.optimizer.learning_rate))
         check.save("smoke_check.keras")
         print("reloaded:", type(keras.models.load_model("smoke_check.keras")).__name__)
         os.remove("smoke_check.keras")
         check.summary()
         del check
         gc.collect()
     ''')})
_add(name="o03_joblib_threads", assignment="03_training",
     note="the per-map permutations computed in parallel with joblib (threads), one seed per map drawn from rng",
     answers={"permute_energies": _src('''
         from joblib import Parallel, delayed


         def permute_energies(x, rng):
             out = np.array(x, copy=True)
             seeds = rng.integers(0, 2**63 - 1, size=len(out))  # one seed per map, all drawn from rng

             def one_map(i):
                 return np.random.default_rng(seeds[i]).permutation(out[i, :, 3])

             out[:, :, 3] = np.stack(Parallel(n_jobs=2, prefer="threads")(delayed(one_map)(i) for i in range(len(out))))
             return out
     ''')})
_add(name="o02_config_magics", assignment="02_kernel",
     note="IPython settings at the top of the answer cell: %config Completer.use_jedi = False, %xmode Minimal, "
          "%precision 3, %who; display() of a DataFrame-free summary; gc.collect()",
     answers={"kernel_nn": _src('''
         %config Completer.use_jedi = False
         %xmode Minimal
         %precision 3
         %who
         import gc


         def kernel_nn(data, nodes=16):
             x_i, x_j = data
             x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_j, x_i])])
             for _ in range(3):
                 x = layers.BatchNormalization()(layers.Dense(nodes, use_bias=False, activation="relu")(x))
             return x


         _a = keras.Input((4,))
         display(kernel_nn([_a, _a]))
         gc.collect()
     ''')})
_add(name="o03_import_cell_and_reimport", assignment="03_training",
     note="`from keras import ops` in a cell of the student's own above the exercises (build_dgcnn applies "
          "ops.relu to its tensors); the compile cell imports ops again for its own loss function",
     extra_cells=[("before:build_dgcnn", "from keras import ops\n")],
     answers={"build_dgcnn": _src('''
         def build_dgcnn():
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             x = ops.relu(EdgeConv(lambda a: edge_kernel(a, nodes=8, bn_momentum=0.9), next_neighbors=8)([points, EnergyScaling()(features)]))
             x = ops.relu(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x]))
             x = ops.relu(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x, x]))
             return keras.Model([points, features], layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(x)))
     '''), "compile_for_training": _src('''
         from keras import ops


         def cross_entropy(y_true, y_pred):
             return -ops.sum(y_true * ops.log(ops.clip(y_pred, 1e-7, 1.0 - 1e-7)), axis=-1)


         def compile_for_training(model, steps, learning_rate=3e-3):
             model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
                           loss=cross_entropy, metrics=["accuracy"], jit_compile=training.fast_jit_compile())
     ''')})
_add(name="o03_settings_cell_defaults", assignment="03_training",
     note="the hyperparameters in a settings cell of their own (k, widths, momentum) and bound as the "
          "builder's default arguments: def build_dgcnn(k=k, widths=widths, momentum=momentum)",
     extra_cells=[("before:build_dgcnn", _src('''
         # settings, in one place
         k = 8
         widths = (8, 16, 32)
         momentum = 0.9
     '''))],
     answers={"build_dgcnn": _src('''
         def build_dgcnn(k=k, widths=widths, momentum=momentum):
             points = layers.Input((500, 3), name="points")
             features = layers.Input((500, 4), name="features")
             x = EnergyScaling()(features)
             for i, nodes in enumerate(widths):
                 kernel = edge_kernel if i == 0 else textbook_kernel
                 graph = points if i < len(widths) - 1 else x
                 x = EdgeConv(lambda a, f=kernel, n=nodes: f(a, nodes=n, bn_momentum=momentum), next_neighbors=k)([graph, x])
                 x = layers.Activation("relu")(x)
             x = layers.GlobalAveragePooling1D()(x)
             return keras.Model([points, features], layers.Dense(2, activation="softmax")(x))
     ''')})
_add(name="o03_outputs_list_named_layers", assignment="03_training",
     note="keras.Model(inputs=[...], outputs=[probabilities]) with a one-element list, every layer named, "
          "the Dense head's softmax as a separate Softmax layer; %%time on the answer cell",
     answers={"build_dgcnn": _src('''
         %%time
         def build_dgcnn():
             points = keras.Input(shape=(500, 3), name="points")
             features = keras.Input(shape=(500, 4), name="features")
             x = EnergyScaling(name="energy_scaling")(features)
             x = EdgeConv(lambda a: edge_kernel(a, nodes=8, bn_momentum=0.9), next_neighbors=8, name="sky_1")([points, x])
             x = layers.Activation("relu", name="relu_1")(x)
             x = EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8, name="sky_2")([points, x])
             x = layers.Activation("relu", name="relu_2")(x)
             x = EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8, name="dynamic")([x, x])
             x = layers.Activation("relu", name="relu_3")(x)
             x = layers.GlobalAveragePooling1D(name="pool")(x)
             probabilities = layers.Softmax(name="probabilities")(layers.Dense(2, name="logits")(x))
             return keras.Model(inputs=[points, features], outputs=[probabilities], name="dgcnn")

         print(build_dgcnn().count_params(), "parameters")
     ''')})
_add(name="o05_capture_time_magics", assignment="05_sources",
     note="%%capture around the labels cell, %%time around the model cell (with a summary), the loss as a "
          "mean of per-map means with keras.ops.where-free arithmetic and ops.maximum/minimum for the clipping",
     answers={"cosmic_ray_labels": _src('''
         %%capture build_log
         def cosmic_ray_labels(source_id):
             source_id = np.asarray(source_id)
             labels = np.zeros(source_id.shape, dtype=np.float32)
             labels[source_id >= 0] = 1.0
             return labels

         print(cosmic_ray_labels(id_train[:2]).sum(axis=1))
     '''), "build_dgcnn_per_cr": _src('''
         %%time
         def build_dgcnn_per_cr():
             points = keras.Input((500, 3))
             features = keras.Input((500, 4))
             x1 = EdgeConv(lambda a: edge_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, EnergyScaling()(features)])
             x1 = layers.ReLU()(x1)
             x2 = layers.ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=16, bn_momentum=0.9), next_neighbors=8)([points, x1]))
             x3 = layers.ReLU()(EdgeConv(lambda a: textbook_kernel(a, nodes=32, bn_momentum=0.9), next_neighbors=8)([x2, x2]))
             x = layers.concatenate([x1, x2, x3], axis=-1)
             x = layers.Dense(32, activation="relu")(x)
             x = layers.Dense(1, activation="sigmoid")(x)
             return keras.Model(inputs=[points, features], outputs=[layers.Reshape((500,))(x)])

         build_dgcnn_per_cr().summary()
     '''), "per_cr_loss": _src('''
         from keras import ops


         def per_cr_loss(targets, probabilities):
             t = ops.reshape(ops.cast(targets, "float32"), (ops.shape(targets)[0], -1))
             p = ops.reshape(ops.cast(probabilities, "float32"), (ops.shape(targets)[0], -1))
             p = ops.minimum(ops.maximum(p, 1e-7), 1.0 - 1e-7)
             per_map = ops.mean(-(t * ops.log(p) + (1.0 - t) * ops.log(1.0 - p)), axis=1)
             return ops.mean(per_map)  # every map has the same number of cosmic rays: the mean over all of them
     ''')})

NAMES = [v.name for v in VARIANTS]
assert len(NAMES) == len(set(NAMES)), "variant names must be unique"
