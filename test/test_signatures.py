"""What ``inspect.signature``, ``help()`` and IDE tooltips show of every public class: the
parameters its constructor takes, with defaults as the code that builds them."""

from __future__ import annotations

import enum
import inspect
import pydoc

import pytest
from aws_cdk import Duration, RemovalPolicy, aws_ecr

import trading_constructs
from trading_constructs._signatures import default_text, readable_signature

CLASSES = [
    value
    for name in trading_constructs.__all__
    if isinstance(value := getattr(trading_constructs, name), type)
    and not issubclass(value, enum.Enum)
    and value.__init__ is not object.__init__  # type: ignore[misc]
]


def test_every_public_class_with_a_constructor_is_covered() -> None:
    names = {cls.__name__ for cls in CLASSES}
    assert {"MeshedFargateService", "TradingCluster", "TradingEdge", "VpcOptions"} <= names
    assert len(CLASSES) >= 30


@pytest.mark.parametrize("cls", CLASSES, ids=[cls.__name__ for cls in CLASSES])
def test_the_signature_names_the_constructor_parameters(cls: type) -> None:
    # GIVEN a public class WHEN its signature is read as IDEs and help() read it
    shown = inspect.signature(cls)
    init = inspect.signature(cls.__init__)  # type: ignore[misc]
    # THEN it lists the constructor's own parameters (not jsii's *args, **kwargs), without self
    assert list(shown.parameters) == list(init.parameters)[1:]
    kinds = {p.kind for p in shown.parameters.values()}
    assert not kinds & {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}
    # AND no default prints as an object repr
    for parameter in shown.parameters.values():
        if parameter.default is not inspect.Parameter.empty:
            assert not repr(parameter.default).startswith("<"), (parameter.name, parameter.default)


def test_help_shows_the_parameters_and_readable_defaults() -> None:
    text = pydoc.render_doc(trading_constructs.MeshedFargateService, renderer=pydoc.plaintext)
    assert "MeshedFargateService(scope: 'Construct', id: 'str', *, cluster:" in text
    assert "removal_policy: 'RemovalPolicy' = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE" in text
    assert "*args" not in text.split("Methods inherited", 1)[0]
    options = pydoc.render_doc(trading_constructs.ResiliencePolicy, renderer=pydoc.plaintext)
    assert "retry: 'RetryOptions' = RetryOptions()" in options
    assert "idle_timeout: 'Duration' = Duration.minutes(5)" in options
    assert "<factory>" not in options and " object at 0x" not in options


def test_a_jsii_class_left_alone_hides_its_parameters() -> None:
    # negative control: what jsii's metaclass shows without a signature of ours
    assert "args" in inspect.signature(aws_ecr.Repository).parameters
    # AND the same reading gives it back its parameters
    assert list(readable_signature(aws_ecr.Repository).parameters)[:2] == ["scope", "id"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (RemovalPolicy.RETAIN, "RemovalPolicy.RETAIN"),
        (Duration.seconds(30), "Duration.seconds(30)"),
        (Duration.seconds(300), "Duration.minutes(5)"),
        (Duration.hours(48), "Duration.days(2)"),
        (Duration.millis(250), "Duration.millis(250)"),
        (Duration.seconds(0), "Duration.seconds(0)"),
        (trading_constructs.RetryOptions(), "RetryOptions()"),
        (trading_constructs.RetryOptions(max_retries=2), "RetryOptions(max_retries=2)"),
        ("trading.local", "'trading.local'"),
    ],
)
def test_a_default_reads_as_the_code_that_builds_it(value: object, text: str) -> None:
    assert default_text(value) == text


def test_a_call_binds_to_the_shown_signature() -> None:
    # the signature is the real one: a call that works binds, a misspelt prop does not
    shown = inspect.signature(trading_constructs.ScannedRepository)
    shown.bind(None, "Images", key=None, keep_last_images=5)
    with pytest.raises(TypeError, match="keep_last_image"):
        shown.bind(None, "Images", key=None, keep_last_image=5)
