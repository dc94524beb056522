"""The compiled half of the renderer's fused path, built when a C compiler and the Python
headers are there, and skipped (with a warning) when not: the package then renders with its
pure-Python path, same bytes, slower (docs/performance.md). Everything else is in
pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "azs_syslog.encode._speedups",
            [
                "azs_syslog/encode/_speedups.c",
                "azs_syslog/encode/_speedups_json.c",
                "azs_syslog/encode/_speedups_text.c",
                "azs_syslog/encode/_speedups_message.c",
                "azs_syslog/encode/_speedups_evtx.c",
                "azs_syslog/encode/_speedups_evtx_write.c",
                "azs_syslog/encode/_speedups_evtx_binary.c",
                "azs_syslog/encode/_speedups_evtx_compile.c",
                "azs_syslog/encode/_speedups_evtx_tree.c",
                "azs_syslog/encode/_speedups_evtx_values.c",
            ],
            depends=[
                "azs_syslog/encode/_speedups.h",
                "azs_syslog/encode/_speedups_evtx.h",
                "azs_syslog/encode/_speedups_evtx_binary.h",
            ],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
