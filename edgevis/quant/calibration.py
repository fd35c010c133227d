"""Calibration images: a user folder or the bundled photos, streamed one at a time.

Memory stays flat however many images there are: paths are listed up front,
pixels are read and preprocessed only when the calibrator asks for them.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from PIL import Image

from ..core.errors import EdgevisError, ImageError
from ..core.types import Preprocess
from ..data.images import iter_image_files, load_image
from ..data.preprocess import preprocess

CALIB_METHODS = ("minmax", "percentile", "entropy")


@dataclass
class ImageSource:
    """A lazily loaded list of images: each item is a zero-argument loader."""

    label: str
    loaders: list[tuple[str, Callable[[], Image.Image]]]
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loaders)

    def arrays(self, spec: Preprocess) -> Iterator[np.ndarray]:
        """(3, H, W) float32 per readable image; unreadable ones are skipped and recorded."""
        for name, load in self.loaders:
            try:
                img = load()
            except ImageError as e:
                self.skipped.append(f"{name}: {e}")
                continue
            yield preprocess(img, spec)


class ArraySource(ImageSource):
    """Preprocessed input arrays from Python (``edgevis.quantize(..., calibration=...)``), in the
    spirit of ONNX Runtime's ``CalibrationDataReader``: any iterable of float32 arrays shaped as one
    image of the model's input (``(3, H, W)``, or ``(H, W, 3)`` for an NHWC model), or a
    zero-argument callable returning a fresh iterator. Arrays are read one at a time, never
    gathered. A one-shot iterator (a generator) can be read once; where a source is read twice
    (both INT8 and integer-only, or held-out images split from it) pass a list or a callable."""

    def __init__(self, label: str, data: Any, shape: tuple[int, ...], *, every: int = 0, held: bool = False,
                 shared: dict[str, bool] | None = None) -> None:
        super().__init__(label, [])
        self.data, self.shape, self.every, self.held = data, tuple(shape), every, held
        self.count = 0  # arrays yielded by the last full pass
        self._shared = shared if shared is not None else {"consumed": False}  # views of one iterator share it

    def __len__(self) -> int:
        return self.count

    def _iterator(self) -> Iterator[Any]:
        if callable(self.data):
            return iter(self.data())
        it = iter(self.data)
        if it is self.data:  # a one-shot iterator: a second pass would silently see nothing
            if self._shared["consumed"]:
                raise EdgevisError(f"the {self.label} iterator was already read once; pass a list or a callable "
                                   "that returns a new iterator")
            self._shared["consumed"] = True
        return it

    def split(self, every: int = 5) -> tuple["ArraySource", "ArraySource"]:
        """(calibration, held-out) views: every ``every``-th array is held out."""
        calib = ArraySource(self.label, self.data, self.shape, every=every, shared=self._shared)
        held = ArraySource(self.label + " (held out)", self.data, self.shape, every=every, held=True, shared=self._shared)
        return calib, held

    def arrays(self, spec: Preprocess) -> Iterator[np.ndarray]:
        n = 0
        for i, a in enumerate(self._iterator()):
            if self.every and (i % self.every == 0) != self.held:
                continue
            try:
                x = np.asarray(a, dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise EdgevisError(f"{self.label} item {i} is not a numeric array ({type(a).__name__}): {e}") from None
            if x.ndim == len(self.shape) + 1 and x.shape[0] == 1:
                x = x[0]
            if x.shape != self.shape:
                raise EdgevisError(f"{self.label} item {i} has shape {tuple(x.shape)}; the model takes one image as "
                                   f"{self.shape} (preprocessed, without the batch axis)")
            if not np.isfinite(x).all():
                raise EdgevisError(f"{self.label} item {i} holds NaN or infinite values")
            n += 1
            yield x
        self.count = n


def folder_source(root: str | os.PathLike[str], role: str = "calibration") -> ImageSource:
    r = Path(root)
    flag = "--calib" if role == "calibration" else "--holdout"
    if not r.exists():
        raise EdgevisError(f"{role} folder not found: {r}")
    if not r.is_dir():
        raise EdgevisError(f"{flag} must be a folder of images, got a file: {r}")
    if not os.access(r, os.R_OK | os.X_OK):
        raise EdgevisError(f"{role} folder {r} is not readable")
    files = list(iter_image_files(r))
    if not files:
        raise EdgevisError(f"{role} folder {r} holds no images (jpg, jpeg, png, bmp, webp; searched recursively)")
    return ImageSource(str(r), [(str(f), (lambda f=f: load_image(f))) for f in files])


VIEWS = 7  # views of each bundled photo (_view)


def _view(img: Image.Image, j: int) -> Image.Image:
    """View ``j`` of a photo, made when it is read: whole, four corners at 70 %, center at 50 %, mirrored
    whole. (Made up front, the 119 views of the bundled photos were 106 MB held through a whole INT8 run.)"""
    w, h = img.size
    cw, ch = int(w * 0.7), int(h * 0.7)
    if j == 0:
        return img
    if j <= 4:
        left, top = ((0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch))[j - 1]
        return img.crop((left, top, left + cw, top + ch))
    if j == 5:
        return img.crop((w // 4, h // 4, w // 4 + w // 2, h // 4 + h // 2))
    return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)


def builtin_sources() -> tuple[ImageSource, ImageSource]:
    """(calibration, held-out) from the photos bundled with scikit-image, split by photo
    so that no held-out image shares a photo with a calibration image."""
    from ..data.samples import builtin_photos

    photos = builtin_photos()
    calib, held = [], []
    for i, (name, img) in enumerate(photos):
        target = held if i % 3 == 1 else calib
        for j in range(VIEWS):
            target.append((f"{name}#{j}", (lambda img=img, j=j: _view(img, j))))
    return ImageSource("bundled scikit-image photos", calib), ImageSource("bundled scikit-image photos (held out)", held)


def split_folder(src: ImageSource, holdout_every: int = 5) -> tuple[ImageSource, ImageSource | None]:
    """Every ``holdout_every``-th image is held out for the fidelity check (None if too few)."""
    if len(src) < 2 * holdout_every:
        return src, None
    calib = [x for i, x in enumerate(src.loaders) if i % holdout_every]
    held = [x for i, x in enumerate(src.loaders) if not i % holdout_every]
    return ImageSource(src.label, calib, src.skipped), ImageSource(src.label + " (held out)", held, src.skipped)


class CalibrationStream:
    """The calibration batches a quantizer reads once, keeping the first ``keep`` images for its
    later accuracy checks (a bounded slice, so memory does not grow with the folder)."""

    def __init__(self, source: ImageSource, spec: Preprocess, batch: int, limit: int, keep: int) -> None:
        self.source, self.spec, self.batch, self.limit, self.keep = source, spec, batch, limit, keep
        self.kept: list[np.ndarray] = []

    def __iter__(self) -> Iterator[np.ndarray]:
        for b in batched(self.source.arrays(self.spec), self.batch, self.limit):
            if len(self.kept) * self.batch < self.keep:
                self.kept.append(b)
            yield b

    def no_image_error(self) -> EdgevisError:
        s = self.source
        return EdgevisError(f"no readable calibration image in {s.label}" + (f" (e.g. {s.skipped[0]})" if s.skipped else ""))

    def skipped_warning(self) -> str | None:
        s = self.source.skipped
        return f"skipped {len(s)} unreadable calibration file(s), e.g. {s[0]}" if s else None


def batched(arrays: Iterator[np.ndarray], batch: int, limit: int) -> Iterator[np.ndarray]:
    """Stack ``(3, H, W)`` images into ``batch``-sized arrays, at most ``limit`` images in all;
    a fixed-batch graph's last batch is padded by repeating its final image."""
    buf: list[np.ndarray] = []
    seen = 0
    for a in arrays:
        if seen >= limit:
            break
        buf.append(a)
        seen += 1
        if len(buf) == batch:
            yield np.stack(buf)
            buf = []
    if buf:
        while len(buf) < batch:
            buf.append(buf[-1])
        yield np.stack(buf)


class ListReader:
    """ORT ``CalibrationDataReader`` over a list of input batches (one input)."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self._it = iter(batches)
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {self.input_name: x}


def ort_method(method: str):  # type: ignore[no-untyped-def]
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
            "entropy": CalibrationMethod.Entropy}[method]


def calibrate_ranges(model_path: str | os.PathLike[str], batches: Iterator[np.ndarray], input_name: str,
                     method: str, cache_path: str | os.PathLike[str], workdir: str | os.PathLike[str],
                     chunk: int = 8, workers: int | None = None) -> int:
    """Run ORT's calibrator for ``method`` over ``batches`` and save the tensor ranges to ``cache_path``
    (the file ``quantize_static(calibration_cache_path=...)`` reads). Returns the number of batches seen.

    ORT's calibrators keep every intermediate tensor of one ``collect_data`` call in
    memory; feeding them ``chunk`` batches per call (they merge ranges and
    histograms across calls) keeps peak memory independent of the image count.
    The batches run on ``workers`` threads (default: one per core, at most 2) through
    one single-threaded session while this thread reads the next images (:class:`_RunAhead`).
    """
    import contextlib
    import io

    from onnxruntime.quantization import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    if method not in CALIB_METHODS:
        raise EdgevisError(f"--calib-method must be one of {', '.join(CALIB_METHODS)} (got {method!r})")
    ops = sorted(set(QDQRegistry) | set(QLinearOpsRegistry))
    total = 0
    # ORT's histogram calibrators print progress to stdout, which must stay clean for --json
    with contextlib.redirect_stdout(io.StringIO()):
        calibrator = create_calibrator(Path(model_path), ops, augmented_model_path=str(Path(workdir) / "augmented.onnx"),
                                       calibrate_method=ort_method(method), extra_options={})
        if getattr(calibrator, "collector", False) is None:  # a histogram method (percentile, entropy)
            calibrator.collector = _histogram_collector(calibrator)
        with _RunAhead(calibrator, workers or calibration_workers()) as ahead:
            while True:
                part = ahead.submit(input_name, itertools.islice(batches, chunk))
                if not part:
                    break
                calibrator.collect_data(ListReader(input_name, part))
                total += len(part)
        if total == 0:
            raise EdgevisError("no calibration data")
        save_tensors_data(calibrator.compute_data(), cache_path)
    return total


def _histogram_collector(calibrator: Any) -> Any:
    """ORT's ``HistogramCollector`` for ``calibrator`` (made as its ``collect_data`` would make it), able to take
    a near-constant tensor.

    For percentile calibration ORT histograms each tensor's absolute values with numpy's default range, the
    tensor's own [min, max]; where those differ by only a few float32 steps numpy cannot make 2048 bins and
    raises ("Too many bins for data range"). A near-uniform softmax does that: one of lsnet_t's is 8192 values
    all 0.0625 +- 1e-6, and `--calib-method percentile` failed on it. A little less narrow, numpy makes the
    bins, and ORT widens the histogram for a later batch's larger values with bins of that first width: a
    softmax 1/16 within 2e-5 on the first images that peaks at 0.23 on a later one took ~10^7 bins (375 MB
    for it and its logits; GBs on a finer first range or a higher peak). So a tensor whose first |x| span less than
    half their max gets a first histogram over [0, max|x|] (bins max|x|/2048 wide; ORT's later batches reuse
    a tensor's edges, so only the first needs them); every other tensor is collected by ORT's own code,
    unchanged (its bins are already at least max|x|/4096 wide)."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    class _Collector(HistogramCollector):  # type: ignore[misc]
        def collect_absolute_value(self, name_to_arr: dict[str, Any]) -> Any:
            for tensor, arr in name_to_arr.items():
                if tensor not in self.histogram_dict:
                    self._seed_if_narrow(tensor, arr)
            return super().collect_absolute_value(name_to_arr)

        def _seed_if_narrow(self, tensor: str, arr: Any) -> None:
            a = np.asarray(arr).ravel()
            if a.size == 0 or not np.issubdtype(a.dtype, np.floating):
                return
            mags = np.absolute(a)
            top, low = float(np.nanmax(mags)), float(np.nanmin(mags))
            if top - low >= top / 2:  # ORT's own edges are fine (all-zero tensors included: numpy widens them)
                return
            edges = np.linspace(0.0, top, self.num_bins + 1).astype(a.dtype)
            if not top > 0 or np.any(edges[:-1] >= edges[1:]):
                return  # not even [0, max] holds the bins (denormal values): ORT's own error stands
            # an empty histogram on those edges: ORT then adds this batch to it as to any later batch
            self.histogram_dict[tensor] = (np.zeros(self.num_bins, np.int64), edges, np.nanmin(a), np.nanmax(a))

    return _Collector(method=calibrator.method, symmetric=calibrator.symmetric, num_bins=calibrator.num_bins,
                      num_quantized_bins=calibrator.num_quantized_bins, percentile=calibrator.percentile,
                      scenario=calibrator.scenario)


def calibration_workers() -> int:
    """Threads that run calibration batches: the cores this process may use, at most 2 (a third gained
    nothing measurable on lsnet_t)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(2, n))


class _RunAhead:
    """The calibrator's session, run ahead on worker threads.

    ORT's calibrators run their (unoptimized, augmented) session on one batch at a time with ORT's
    default of one intra-op thread per core; on a graph of many small ops (lsnet_t: ~2,000 after
    augmentation) those threads mostly wait on each other: 64 images took 5 s with 2 threads, 3 s
    with 1. Here the session has one intra-op thread and each batch is handed to a worker as soon as
    it is read, so the workers keep the cores busy while this thread reads and preprocesses the next
    images. The calibrator then reads the outputs back in the order the batches were given
    (:meth:`run`, which it calls as its session's ``run``): it sees the same outputs in the same order as
    with its own session (ORT's CPU kernels give the same results for any intra-op thread count; a
    calibration cache written both ways on lsnet_t was byte for byte the same), so its ranges and
    histograms are the same."""

    def __init__(self, calibrator: Any, workers: int) -> None:
        self.calibrator, self.workers = calibrator, workers
        self.session = calibrator.infer_session
        self.pending: list[tuple[dict[str, np.ndarray], Any]] = []
        self.pool: Any = None

    def __enter__(self) -> "_RunAhead":
        import onnxruntime as ort
        from concurrent.futures import ThreadPoolExecutor

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as ORT's calibrator makes it
        so.intra_op_num_threads = 1
        self.session = ort.InferenceSession(self.calibrator.augmented_model_path, so,
                                            providers=self.calibrator.execution_providers)
        self.calibrator.infer_session = self
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="edgevis-calibrate")
        return self

    def __exit__(self, *exc: Any) -> None:
        for _, f in self.pending:
            f.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True)
        self.calibrator.infer_session = self.session

    def submit(self, input_name: str, batches: Iterator[np.ndarray]) -> list[np.ndarray]:
        """Start each of ``batches`` as it is read; the list of them (for the calibrator's data reader)."""
        part = []
        for b in batches:
            part.append(b)
            feed = {input_name: b}
            self.pending.append((feed, self.pool.submit(self.session.run, None, feed)))
        return part

    def run(self, output_names: Any, feed: dict[str, np.ndarray]) -> Any:
        """The outputs of the oldest batch started (the calibrator asks for them in the order given)."""
        if self.pending and output_names is None and all(
                feed.get(k) is v for k, v in self.pending[0][0].items()):
            return self.pending.pop(0)[1].result()
        return self.session.run(output_names, feed)  # not what was started: run it here

    def __getattr__(self, name: str) -> Any:  # get_inputs, get_outputs, ...: the session's own
        return getattr(self.session, name)



def calibration_sources(calib_dir: str | os.PathLike[str] | None, holdout_dir: str | os.PathLike[str] | None,
                        warnings: list[str]) -> tuple[ImageSource, ImageSource]:
    """(calibration images, held-out images for the fidelity report) for a quantizer's options."""
    if calib_dir is None:
        calib, held = builtin_sources()
        warnings.append("calibrated on the bundled sample photos; calibrating on images from the deployment "
                        "domain (--calib DIR) gives better accuracy")
    elif holdout_dir is not None:
        calib, held = folder_source(calib_dir), None
    else:
        calib, held = split_folder(folder_source(calib_dir))
    if holdout_dir is not None:
        return calib, folder_source(holdout_dir, role="held-out")
    if held is None:
        _, held = builtin_sources()
        warnings.append(f"too few images in {calib_dir} to hold some out; fidelity is measured on "
                        "the bundled sample photos")
    return calib, held
