"""Training the DAAF network: its config (from :mod:`daaf.config`), losses, the trainer and the
stripped export.

The public names below load their module on first use (see :mod:`daaf.utils.lazy`).
"""

from daaf.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        ".config": ["Config", "config_from_dict", "load_config", "save_config"],
        "export": ["export_model"],
        "losses": ["build_criterion"],
        "trainer": ["train"],
    },
)
