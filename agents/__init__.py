"""Agents: LangGraph agents, the LiteLLM call, scripted bots and the gRPC seat client."""
