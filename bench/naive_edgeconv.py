"""A deliberately naive EdgeConv, kept only so the benchmark can show what the real layer saves.

It does what the textbook's layer did, in keras.ops so that it runs on Keras 3:
neighbours by top_k(k + 1) then slicing off the first column (under XLA this slice turns
into a full sort), neighbour features gathered with explicitly tiled batch indices, and
the kernel network called once per neighbour slot (k calls) instead of once on all edges.
Same weights and results as ``edgeconv.EdgeConv`` (ties aside); not for use in the course.
"""

import keras
from keras import ops

from edgeconv import EdgeConv


class NaiveEdgeConv(EdgeConv):
    def call(self, inputs, training=None):
        points, features = self._split(inputs)
        k = self.next_neighbors
        inner = ops.matmul(points, ops.transpose(points, (0, 2, 1)))
        norm = ops.sum(points * points, axis=-1, keepdims=True)
        distance = ops.stop_gradient(norm - 2 * inner + ops.transpose(norm, (0, 2, 1)))
        _, indices = ops.top_k(-distance, k=k + 1)
        indices = indices[:, :, 1:]  # drop the point itself (the slow slice)
        shape = ops.shape(indices)
        batch = ops.tile(ops.reshape(ops.arange(shape[0]), (-1, 1, 1, 1)), (1, shape[1], k, 1))  # tiled
        full = ops.concatenate([ops.cast(batch, indices.dtype), ops.expand_dims(indices, -1)], axis=-1)
        channels = self.kernel_func.inputs[0].shape[-1]
        flat = ops.reshape(features, (-1, channels))
        linear = full[..., 0] * shape[1] + full[..., 1]
        neighbors = ops.reshape(ops.take(flat, ops.reshape(linear, (-1,)), axis=0), (shape[0], shape[1], k, channels))
        outputs = []
        for slot in range(k):  # the kernel network once per neighbour slot
            x_i = ops.reshape(features, (-1, channels))
            x_j = ops.reshape(neighbors[:, :, slot, :], (-1, channels))
            outputs.append(ops.reshape(self.kernel_func([x_i, x_j], training=training), (shape[0], shape[1], -1)))
        return ops.mean(ops.stack(outputs, axis=2), axis=2)


def build_naive_reference_model():
    """The reference DGCNN with the naive layer (4,770 parameters)."""
    from crsky.models import build_reference_model

    return build_reference_model(layer_class=NaiveEdgeConv)


keras.saving.register_keras_serializable(package="bench")(NaiveEdgeConv)
