"""Reverse-mode automatic differentiation from scratch: a scalar engine and NumPy layers.

Two levels, as in the chapter "Backpropagation from scratch":

- :class:`Value`, a scalar that records the operations that produced it. Each operation
  computes its result *and* defines, right beside it, the local backward rule that passes the
  output's gradient to its inputs (the chain rule, one node at a time). ``backward()`` visits
  the graph in reverse topological order.
- :class:`Linear`, :class:`ReLU` and :class:`SoftmaxCrossEntropy`, the same idea for whole
  arrays: ``forward`` caches what ``backward`` needs, ``backward`` maps the gradient of the
  loss with respect to the output to the gradient with respect to the input.

:func:`numerical_gradient` and :func:`relative_error` check both against central finite
differences.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Real

import numpy as np

from visionbook._validate import _as_array

# ----------------------------------------------------------------------------------------
# The scalar engine
# ----------------------------------------------------------------------------------------


class Value:
    """A scalar that remembers how it was computed, so that ``backward()`` can fill in gradients.

    Args:
        data (float): the number.
        children (tuple of Value): the inputs of the operation that made it. Default ().
        op (str): that operation's name, for drawing the graph. Default "".
        label (str): a name for drawing the graph. Default "".

    Attributes:
        data (float): the value computed by the forward pass.
        grad (float): d(output)/d(this value) after ``output.backward()``; starts at 0.

    >>> a, b = Value(2.0), Value(-3.0)
    >>> c = a * b + a
    >>> c.backward()
    >>> c.data, a.grad, b.grad
    (-4.0, -2.0, 2.0)

    Introduced in the chapter "Backpropagation from scratch".
    """

    def __init__(
        self, data: float, children: tuple[Value, ...] = (), op: str = "", label: str = ""
    ):
        if isinstance(data, bool) or not isinstance(data, Real):
            raise TypeError(f"expected a real number for Value, got {type(data).__name__}")
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self._children = children
        self._op = op
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"

    # Each operation: the forward result, then the local backward rule beside it. ---------

    def __add__(self, other: Value | float) -> Value:
        other = _lift(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():  # d(a+b)/da = d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Value | float) -> Value:
        other = _lift(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> Value:
        if isinstance(exponent, bool) or not isinstance(exponent, Real):
            raise TypeError(
                f"expected a constant int or float exponent, got {type(exponent).__name__}"
            )
        out = Value(self.data**exponent, (self,), f"**{exponent:g}")

        def _backward():  # d(a^k)/da = k a^(k-1)
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():  # d(e^a)/da = e^a
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        if self.data <= 0:
            raise ValueError(f"expected a positive Value for log, got {self.data:g}")
        out = Value(math.log(self.data), (self,), "log")

        def _backward():  # d(log a)/da = 1/a
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():  # d(tanh a)/da = 1 - tanh(a)^2
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> Value:
        # overflow-free form
        out = Value(0.5 * (1.0 + math.tanh(0.5 * self.data)), (self,), "sigmoid")

        def _backward():  # d(sigma(a))/da = sigma(a)(1 - sigma(a))
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():  # 1 where a > 0, else 0 (also at 0, as in PyTorch)
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    # Operations built from the ones above: their gradients come for free. ---------------

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: Value | float) -> Value:
        return self + (-_lift(other))

    def __truediv__(self, other: Value | float) -> Value:
        return self * _lift(other) ** -1.0

    def __radd__(self, other: float) -> Value:
        return self + other

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __rsub__(self, other: float) -> Value:
        return _lift(other) - self

    def __rtruediv__(self, other: float) -> Value:
        return _lift(other) / self

    def backward(self) -> None:
        """Fill in ``grad`` of every Value this one depends on: d(self)/d(node).

        Sets ``self.grad = 1`` and calls each node's local backward rule in reverse
        topological order, so a node passes its gradient on only once all of its uses have
        contributed. Gradients accumulate (``+=``): reset them to 0 before a second call.
        """
        self.grad = 1.0
        for node in reversed(topological_order(self)):
            node._backward()


def _lift(x: Value | float) -> Value:
    """A Value as it is, a plain number as a constant Value."""
    return x if isinstance(x, Value) else Value(x)


def topological_order(root: Value) -> list[Value]:
    """Every Value that ``root`` depends on, each after all of its inputs (``root`` last).

    Iterative depth-first search, so long chains do not hit Python's recursion limit.

    Args:
        root (Value): the output of a computation.

    Returns:
        list of Value: inputs first, ``root`` last, each node once.

    >>> x = Value(3.0, label="x")
    >>> [v.label or v._op for v in topological_order(x * x + 1.0)]
    ['x', '*', '', '+']

    Introduced in the chapter "Backpropagation from scratch".
    """
    if not isinstance(root, Value):
        raise TypeError(f"expected a Value, got {type(root).__name__}")
    order, seen, stack = [], {id(root)}, [(root, iter(root._children))]
    while stack:
        node, children = stack[-1]
        child = next(children, None)
        if child is None:
            order.append(stack.pop()[0])
        elif id(child) not in seen:
            seen.add(id(child))
            stack.append((child, iter(child._children)))
    return order


def draw_graph(root: Value, ax=None, title: str | None = None):
    """Draw the computational graph of ``root``: one box per Value (label, data, grad), left
    to right.

    Each column holds the nodes at the same distance from the output, so an input sits just
    left of the operation that uses it; an arrow goes from each input to the node it feeds, and
    each operation's box names it in brackets.

    Args:
        root (Value): the output of a computation.
        ax (matplotlib Axes | None): where to draw. Default: a new figure.
        title (str | None): the axes' title.

    Returns:
        matplotlib.figure.Figure.

    >>> fig = draw_graph(Value(2.0, label="a") * 3.0)

    Introduced in the chapter "Backpropagation from scratch".
    """
    import matplotlib.pyplot as plt

    nodes = topological_order(root)
    column = {id(root): 0}  # longest path to the output: one column left of its leftmost consumer
    for n in reversed(nodes):
        for c in n._children:
            column[id(c)] = max(column.get(id(c), 0), column[id(n)] + 1)
    width = max(column.values())
    columns: dict[int, list[Value]] = {}
    for n in nodes:
        columns.setdefault(width - column[id(n)], []).append(n)
    pos = {
        id(n): (d, i - (len(col) - 1) / 2) for d, col in columns.items() for i, n in enumerate(col)
    }
    if ax is None:
        _, ax = plt.subplots(
            figsize=(2.2 * len(columns) + 0.5, 1.1 * max(len(c) for c in columns.values()) + 0.8)
        )
    for n in nodes:
        for c in n._children:
            ax.annotate(
                "",
                pos[id(n)],
                pos[id(c)],
                arrowprops={"arrowstyle": "->", "color": "grey", "shrinkA": 28, "shrinkB": 28},
            )
        text = f"{n.label + ' = ' if n.label else ''}{n.data:.4g}\ngrad {n.grad:.4g}"
        face = "#fde8c8" if n._op else "#d8e8f8"
        ax.text(
            *pos[id(n)],
            (f"[{n._op}]\n" if n._op else "") + text,
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round", "fc": face},
        )
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(min(p[1] for p in pos.values()) - 0.7, max(p[1] for p in pos.values()) + 0.7)
    ax.axis("off")
    ax.set_title(title or "computational graph: inputs (blue) to output")
    return ax.figure


# ----------------------------------------------------------------------------------------
# Vectorised layers in NumPy
# ----------------------------------------------------------------------------------------


def _check_array(x: np.ndarray, ndim: int, what: str) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"expected a NumPy array for {what}, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"expected {what} with {ndim} dimensions, got shape {x.shape}")


class Linear:
    """A fully connected layer ``y = x W^T + b`` with a hand-written backward pass.

    The weight has PyTorch's layout ``(out_features, in_features)``, so the parameters of an
    ``nn.Linear`` can be copied in unchanged.

    Args:
        weight (np.ndarray): ``(out_features, in_features)``.
        bias (np.ndarray): ``(out_features,)``.

    >>> layer = Linear(np.array([[1.0, 2.0]]), np.array([0.5]))
    >>> layer.forward(np.array([[3.0, 4.0]]))
    array([[11.5]])
    >>> layer.backward(np.array([[1.0]])), layer.grad_weight
    (array([[1., 2.]]), array([[3., 4.]]))

    Introduced in the chapter "Backpropagation from scratch".
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        _check_array(weight, 2, "weight")
        _check_array(bias, 1, "bias")
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(
                f"expected a bias of shape ({weight.shape[0]},) for weight {weight.shape}, got "
                f"{bias.shape}"
            )
        self.weight, self.bias = weight, bias
        self.grad_weight, self.grad_bias = np.zeros_like(weight), np.zeros_like(bias)
        self._x: np.ndarray | None = None

    @classmethod
    def init(cls, in_features: int, out_features: int, rng: np.random.Generator) -> Linear:
        """PyTorch's default initialisation: weight and bias uniform in ``±1/sqrt(in_features)``."""
        bound = 1.0 / math.sqrt(in_features)
        return cls(
            rng.uniform(-bound, bound, (out_features, in_features)),
            rng.uniform(-bound, bound, out_features),
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(N, in_features) -> (N, out_features)``; keeps ``x`` for the backward pass."""
        _check_array(x, 2, "the input of Linear")
        if x.shape[1] != self.weight.shape[1]:
            raise ValueError(
                f"expected inputs with {self.weight.shape[1]} features, got shape {x.shape}"
            )
        self._x = x
        return x @ self.weight.T + self.bias

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Given dL/dy ``(N, out)``: store dL/dW and dL/db, return dL/dx ``(N, in)``."""
        if self._x is None:
            raise RuntimeError("Linear.backward called before forward")
        self.grad_weight = grad_out.T @ self._x  # sum over the batch of outer products
        self.grad_bias = grad_out.sum(axis=0)
        return grad_out @ self.weight

    def parameters(self) -> list[np.ndarray]:
        """``[weight, bias]``, the arrays an optimiser updates in place."""
        return [self.weight, self.bias]

    def gradients(self) -> list[np.ndarray]:
        """``[grad_weight, grad_bias]`` from the last backward pass (not accumulated)."""
        return [self.grad_weight, self.grad_bias]


class ReLU:
    """``max(x, 0)`` elementwise; the backward pass lets the gradient through where ``x > 0``.

    >>> relu = ReLU()
    >>> relu.forward(np.array([[-1.0, 2.0]])), relu.backward(np.array([[5.0, 5.0]]))
    (array([[0., 2.]]), array([[0., 5.]]))

    Introduced in the chapter "Backpropagation from scratch".
    """

    def __init__(self):
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Any shape to the same shape; keeps the mask ``x > 0``."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"expected a NumPy array for the input of ReLU, got {type(x).__name__}")
        self._mask = x > 0
        return np.where(self._mask, x, 0.0)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """dL/dx = dL/dy where x > 0, else 0 (also at exactly 0, as PyTorch does)."""
        if self._mask is None:
            raise RuntimeError("ReLU.backward called before forward")
        return grad_out * self._mask

    def parameters(self) -> list[np.ndarray]:
        return []

    def gradients(self) -> list[np.ndarray]:
        return []


class SoftmaxCrossEntropy:
    """Mean cross-entropy of softmax(logits) against integer labels, with its gradient.

    The forward pass uses the stable log-sum-exp form; the backward pass is the famous
    ``(softmax(z) - onehot(y)) / N``: the two derivatives (of the softmax and of the log)
    collapse into one subtraction.

    >>> loss = SoftmaxCrossEntropy()
    >>> round(loss.forward(np.zeros((2, 4)), np.array([0, 3])), 6) == round(math.log(4), 6)
    True
    >>> loss.backward()[0]
    array([-0.375,  0.125,  0.125,  0.125])

    Introduced in the chapter "Backpropagation from scratch".
    """

    def __init__(self):
        self._probs: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        """Logits ``(N, K)`` and labels ``(N,)`` in ``0..K-1`` to the mean loss (a float)."""
        _check_array(logits, 2, "logits")
        _check_array(y, 1, "labels")
        if (
            len(y) != len(logits)
            or not np.issubdtype(y.dtype, np.integer)
            or y.min() < 0
            or y.max() >= logits.shape[1]
        ):
            raise ValueError(
                f"expected {len(logits)} integer labels in 0..{logits.shape[1] - 1}, got {y.dtype} "
                f"labels of shape {y.shape}"
            )
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self._probs, self._y = np.exp(log_probs), y
        return float(-log_probs[np.arange(len(y)), y].mean())

    def backward(self, grad_loss: float = 1.0) -> np.ndarray:
        """dL/dlogits ``(N, K)`` = ``grad_loss * (softmax - onehot) / N``."""
        if self._probs is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        grad = self._probs.copy()
        grad[np.arange(len(self._y)), self._y] -= 1.0
        return grad_loss * grad / len(self._y)


class Sequential:
    """Layers applied in order; ``backward`` visits them in reverse, passing the gradient along.

    Args:
        layers (sequence): objects with ``forward``, ``backward``, ``parameters``, ``gradients``.

    >>> net = Sequential([Linear(np.eye(2), np.zeros(2)), ReLU()])
    >>> net.forward(np.array([[1.0, -1.0]])), net.backward(np.ones((1, 2)))
    (array([[1., 0.]]), array([[1., 0.]]))

    Introduced in the chapter "Backpropagation from scratch".
    """

    def __init__(self, layers: Sequence):
        missing = [
            type(m).__name__
            for m in layers
            if not all(hasattr(m, a) for a in ("forward", "backward", "parameters", "gradients"))
        ]
        if missing:
            raise TypeError(
                "expected layers with forward, backward, parameters and gradients, got "
                f"{', '.join(missing)}"
            )
        self.layers = list(layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self) -> list[np.ndarray]:
        return [g for layer in self.layers for g in layer.gradients()]


# ----------------------------------------------------------------------------------------
# Gradient checking
# ----------------------------------------------------------------------------------------


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-6
) -> np.ndarray:
    """Central finite differences: ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every entry ``i``.

    The error is of order ``h^2`` (truncation) plus ``1e-16 |f| / h`` (rounding), about
    ``1e-10`` for well-scaled functions in float64 with the default ``h``; in float32 it
    would be far larger, so float64 is required. ``x`` is perturbed in place and restored.

    Args:
        f (Callable): maps the array ``x`` to a float.
        x (np.ndarray): float64 array of any shape, the point where the gradient is taken.
        h (float): the step. Default 1e-6.

    Returns:
        np.ndarray: the estimated gradient, same shape as ``x``.

    >>> numerical_gradient(lambda v: float((v**2).sum()), np.array([1.0, -2.0])).round(6)
    array([ 2., -4.])

    Introduced in the chapter "Backpropagation from scratch".
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(
            f"expected a float64 NumPy array for x, got {getattr(x, 'dtype', type(x).__name__)}"
        )
    if not callable(f):
        raise TypeError(f"expected f as a callable that maps x to a float, got {type(f).__name__}")
    if isinstance(h, bool) or not isinstance(h, int | float) or not h > 0:
        raise ValueError(f"expected a positive step h, got {h!r}")
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        f_plus = f(x)
        x[i] = saved - h
        f_minus = f(x)
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(actual, expected, floor: float = 1e-8) -> float:
    """Normwise relative error ``max|a - e| / max(max|a|, max|e|, floor)``.

    Each entry's error is measured against the largest entry of the whole gradient rather
    than against itself, so a component that is nearly zero (where finite differences can
    only be accurate to about 1e-10 in absolute terms) does not blow up the ratio; ``floor``
    avoids dividing by zero when both gradients vanish.

    Args:
        actual: array, tensor or number.
        expected: the reference, same shape.
        floor (float): smallest denominator. Default 1e-8.

    Returns:
        float: 0 for identical inputs; about 1e-16 for float64 round-off.

    >>> relative_error(np.array([1.0, 1e-9]), np.array([1.0, 2e-9]))
    1e-09

    Introduced in the chapter "Backpropagation from scratch".
    """
    a, e = _as_array(actual, "actual"), _as_array(expected, "expected")
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not floor > 0:
        raise ValueError(f"expected a positive floor, got {floor!r}")
    if a.shape != e.shape:
        raise ValueError(f"expected arrays of the same shape, got {a.shape} and {e.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.abs(a).max()), float(np.abs(e).max()), floor)
    return float(np.abs(a - e).max() / scale)
