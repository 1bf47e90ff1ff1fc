"""Static files: hashed names, compressed copies (WhiteNoise), and ES modules that import others.

The design systems' scripts are ES modules, started by small modules of ours that `import` them
(static/js/govuk.js, static/js/moj.js). Django's manifest storage rewrites those import paths to
the hashed names too when asked, so every script is cached for good under its hash."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
