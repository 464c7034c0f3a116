"""``import voxengine`` stays light: no fake server, no optional heavy dependency."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from benchmarks.imports import HEAVY  # the optional heavy deps the benchmark measures

from voxengine.errors import ConfigError
from voxengine.providers import registry


def _fresh_modules(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=60
    )
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_import_voxengine_loads_no_fake_and_no_heavy_dependency() -> None:
    modules = _fresh_modules("import voxengine")
    assert "voxengine.engine" in modules  # the import did happen
    assert [m for m in modules if m.startswith("voxengine.testing")] == []
    assert sorted({m.split(".")[0] for m in modules} & set(HEAVY)) == []


def test_mock_is_imported_on_first_use() -> None:
    modules = _fresh_modules(
        "from voxengine.providers import MockConfig, MockProvider\n"
        "from voxengine.providers.registry import get_provider\n"
        "assert get_provider('mock') is MockProvider\n"
        "assert MockProvider.config_type is MockConfig"
    )
    assert "voxengine.testing.mock" in modules
    assert "voxengine.testing.fakes.openai.server" in modules


def test_lazy_entries_are_listed_and_resolve_to_their_classes() -> None:
    from voxengine.providers import MockProvider, PipelineProvider

    assert {"mock", "pipeline", "anthropic"} <= set(registry.list_providers())
    assert registry.get_provider("mock") is MockProvider
    assert registry.get_provider("pipeline") is PipelineProvider


def test_a_lazy_name_is_protected_like_an_eager_one() -> None:
    from voxengine.providers import OpenAIProvider

    with pytest.raises(ConfigError, match="already registered"):
        registry.register_provider("mock", OpenAIProvider)


def test_unknown_attribute_of_providers_is_an_attribute_error() -> None:
    import voxengine.providers as providers

    with pytest.raises(AttributeError, match="NoSuchProvider"):
        _ = providers.NoSuchProvider  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("voxengine.testing._fake_openai", "voxengine.testing.fakes.openai"),
        ("voxengine.testing._server", "voxengine.testing.fakes.openai.serve"),
        ("voxengine.testing._fake_gemini", "voxengine.testing.fakes.gemini"),
        ("voxengine.testing._gemini_server", "voxengine.testing.fakes.gemini.serve"),
        ("voxengine.testing._fake_llm", "voxengine.testing.fakes.llm"),
        ("voxengine.recording", "voxengine.record.recording"),
        ("voxengine.replay", "voxengine.record.replay"),
        ("voxengine.logs", "voxengine.record.logs"),
    ],
)
def test_a_former_module_path_re_exports_its_new_home(old: str, new: str) -> None:
    before, after = importlib.import_module(old), importlib.import_module(new)
    assert before.__all__ == after.__all__
    assert after.__all__
    for name in after.__all__:
        assert getattr(before, name) is getattr(after, name), name
