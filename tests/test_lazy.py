"""Lazily exported names: each package's names resolve to their modules' objects, unknown ones fail."""

import importlib

import pytest

from asr.lazy import lazy_exports


@pytest.mark.parametrize("package", ["asr", "asr.decoding", "streaming"])
def test_every_exported_name_is_its_modules_object(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        defining = importlib.import_module(f"{package}.{module._EXPORTS[name]}")
        assert getattr(module, name) is getattr(defining, name)


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    getattr_ = lazy_exports("asr", {"Model": "api"})
    with pytest.raises(AttributeError, match="module 'asr' has no attribute 'Nope'"):
        getattr_("Nope")
    assert getattr_("Model").__name__ == "Model"
