"""Discovery over entry points: validated at load, with who/what/how-to-fix errors."""

from importlib.metadata import EntryPoint

import pytest

from prelabel.errors import BackendLoadError, BackendNotFound
from prelabel.registry import discover, load_backend, select_backend
from prelabel.testing.reference import ReferenceBackend


def ep(name, value):
    return EntryPoint(name=name, value=value, group="prelabel.backends")


REF = "prelabel.testing.reference:ReferenceBackend"


def test_discover_reads_metadata_without_importing():
    found = discover([ep("reference", REF), ep("ghost", "no_such_module_xyz:Thing")])
    assert set(found) == {"reference", "ghost"}
    assert found["ghost"].target == "no_such_module_xyz:Thing"


def test_installed_textcls_is_discovered_like_a_third_party_plugin():
    info = discover()["textcls"]
    assert info.dist == "prelabel-textcls"
    assert info.target == "prelabel_textcls:TextClassifierBackend"


def test_load_backend_validates_and_returns_the_class():
    assert load_backend("reference", [ep("reference", REF)]) is ReferenceBackend


def test_unknown_name_lists_installed_and_suggests_install():
    with pytest.raises(BackendNotFound, match=r"installed: reference\).*pip install prelabel-yolo"):
        load_backend("yolo", [ep("reference", REF)])


def test_import_error_names_the_plugin():
    with pytest.raises(BackendLoadError, match=r"ghost.*no_such_module_xyz"):
        load_backend("ghost", [ep("ghost", "no_such_module_xyz:Thing")])


def test_name_must_match_entry_point():
    with pytest.raises(BackendLoadError, match=r"declares name=.reference.*.other."):
        load_backend("other", [ep("other", REF)])


def test_entry_point_must_be_a_backend_subclass():
    with pytest.raises(BackendLoadError, match=r"subclass of prelabel\.Backend"):
        load_backend("json", [ep("json", "json:JSONDecoder")])


def test_abstract_class_is_refused():
    with pytest.raises(BackendLoadError, match="does not implement predict"):
        load_backend("base", [ep("base", "prelabel.backend:Backend")])


def test_select_backend():
    assert select_backend("x", [ep("reference", REF)]) == "x"
    assert select_backend(None, [ep("reference", REF)]) == "reference"
    with pytest.raises(BackendNotFound, match="PRELABEL_BACKEND"):
        select_backend(None, [ep("a", REF), ep("b", REF)])
