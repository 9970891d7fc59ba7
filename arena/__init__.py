"""Arena: game engine, match runner, match store and the gRPC server."""
