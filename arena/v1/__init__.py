"""Generated protobuf and gRPC code for maro.arena.v1 (regenerate with `maro dev protogen`)."""
