"""Device and dtype choice. `auto`: CUDA (bf16 where supported) → MPS → CPU float32."""

from dataclasses import dataclass

from core.base.errors import UserError

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Placement:
    device: str  # "cpu", "cuda", "cuda:1", "mps"
    dtype: str   # "float32", "bfloat16", "float16"

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


def choose_placement(device: str = "auto", dtype: str = "auto") -> Placement:
    """Resolve `--device`/`--dtype` through Accelerate's view of the hardware."""
    import torch
    from accelerate import PartialState
    from accelerate.utils import is_mps_available

    if device not in DEVICES:
        raise UserError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")

    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available on this machine")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        # Under torchrun / accelerate launch this is the rank's own GPU.
        resolved = str(PartialState().device)
    elif device == "auto" and is_mps_available():
        resolved = "mps"
    elif device == "mps":
        if not is_mps_available():
            raise UserError("--device mps: MPS is not available on this machine")
        resolved = "mps"
    else:
        resolved = "cpu"

    if dtype == "auto":
        if resolved.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            dtype = "float32"
    if dtype == "float16" and resolved == "cpu":
        raise UserError("--dtype float16 is not supported on the CPU: use float32 or bfloat16")
    return Placement(resolved, dtype)
