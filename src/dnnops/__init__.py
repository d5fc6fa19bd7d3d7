"""dnnops: take a deep neural network from data to production and keep it healthy there."""

from dnnops.config import ProjectConfig, load_config, parse_config
from dnnops.errors import DnnopsError

__version__ = "0.1.0"
__all__ = ["DnnopsError", "ProjectConfig", "__version__", "load_config", "parse_config"]
