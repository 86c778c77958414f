"""Candidate generation: model servers and clients (embedded llama.cpp, vLLM, any OpenAI
endpoint), localisation, the one-shot Agentless-style agent and the multi-turn agentic one,
edit formats, and patches. Imports only the stdlib kernel of `harness`."""
