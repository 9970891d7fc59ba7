"""The gRPC transport: the server (`server`), its servicer (`servicer`), the conversions to and
from the generated messages (`convert`) and its guards: keys, limits, malformed messages (`guard`)."""
