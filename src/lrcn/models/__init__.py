"""Task models, one family per file; built by name through :func:`create_model`."""

from lrcn.models import activity as activity  # registers lrcn, single_frame, cnn_convlstm
from lrcn.models import captioning as captioning  # show_and_tell, lrcn_captioner, show_attend_tell
from lrcn.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
