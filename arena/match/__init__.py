"""Matches: how seats are filled (`seats`), what flows between a seat and its match (`messages`),
the runner that plays one match (`runner`), the service that creates, seats and owns them
(`service`), request checks (`inputs`) and transcripts from the store (`replay`)."""
