"""Generated gRPC code matches proto/."""

from maro.arena import protogen


def test_generated_code_is_not_stale():
    assert protogen.stale_files() == [], "run `maro dev protogen` and commit arena/v1"
