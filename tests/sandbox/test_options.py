"""The sandbox's options: environment, command line, and the loopback-only rule."""

from __future__ import annotations

import pytest

from portal.sandbox.__main__ import main
from portal.sandbox.options import DEFAULT_DB, SandboxOptions
from portal.sandbox.server import SandboxServer, is_loopback


def test_defaults_are_local_and_fault_free():
    options = SandboxOptions.from_env({})

    assert (options.host, options.port) == ("127.0.0.1", 8001)
    assert (options.client_id, options.client_secret) == ("sandbox-client", "sandbox-secret")
    assert options.db_path == str(DEFAULT_DB)
    assert DEFAULT_DB.parts[-2:] == ("var", "sandbox.sqlite3")
    assert options.token_lifetime == 3600
    assert (options.order_ship_after, options.result_ready_after) == (60, 90)
    assert (options.latency_ms, options.error_rate, options.malformed_rate) == (0, 0.0, 0.0)


def test_the_environment_sets_every_fault():
    options = SandboxOptions.from_env(
        {
            "SANDBOX_PORT": "9001",
            "SANDBOX_DB": ":memory:",
            "SANDBOX_LATENCY_MS": "250",
            "SANDBOX_ERROR_RATE": "0.2",
            "SANDBOX_ERROR_CODES": "500, 429",
            "SANDBOX_MALFORMED_RATE": "0.1",
            "SANDBOX_TOKEN_LIFETIME": "30",
            "SANDBOX_RESULT_READY_AFTER": "120",
            "SANDBOX_ORDER_SHIP_AFTER": "10",
            "SANDBOX_SEED": "7",
        }
    )

    assert options.port == 9001
    assert options.db_path == ":memory:"
    assert options.latency_ms == 250
    assert options.error_rate == 0.2
    assert options.error_codes == (500, 429)
    assert options.malformed_rate == 0.1
    assert options.token_lifetime == 30
    assert options.result_ready_after == 120
    assert options.order_ship_after == 10
    assert options.seed == 7


def test_error_codes_must_be_http_errors():
    with pytest.raises(ValueError, match="SANDBOX_ERROR_CODES"):
        SandboxOptions.from_env({"SANDBOX_ERROR_CODES": "200"})


def test_the_command_line_overrides_the_environment():
    options = SandboxOptions.from_args(
        ["--port", "9100", "--error-codes", "503", "--allow-external"], environ={"SANDBOX_PORT": "9001"}
    )

    assert options.port == 9100
    assert options.error_codes == (503,)
    assert options.allow_external


PUBLIC = "0.0.0.0"  # noqa: S104 (the address the sandbox must refuse)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        (PUBLIC, False),
        ("10.0.0.5", False),
        ("example.org", False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_the_sandbox_refuses_a_non_loopback_address():
    with pytest.raises(ValueError, match="allow-external"):
        SandboxServer(SandboxOptions(host=PUBLIC, port=0, db_path=":memory:"))


def test_the_command_exits_with_an_error_for_a_public_address(capsys):
    assert main(["--host", PUBLIC, "--db", ":memory:"]) == 2
    assert "refusing to listen" in capsys.readouterr().err


def test_the_sqlite_store_persists_to_its_file(tmp_path):
    path = str(tmp_path / "sub" / "sandbox.sqlite3")
    server = SandboxServer(SandboxOptions(port=0, db_path=path))
    order = server.store.create_order(amount="5.00", now=1.0)
    server.stop()

    again = SandboxServer(SandboxOptions(port=0, db_path=path))
    assert again.store.get_order(order["id"])["amount"] == "5.00"
    again.stop()
