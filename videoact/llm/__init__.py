"""Language-model backends for long-term anticipation: one protocol, one vocabulary constraint.

``base``: ``Prompt``, ``Candidate``, the ``LLMBackend`` protocol and its registry (build by name with
``heads.anticipation.backends.build_backend``);
``constraint``: ``ActionConstraint`` (vocabulary -> GBNF / regex / JSON schema / token-trie automaton + validators);
``hf`` (transformers), ``http`` (OpenAI-compatible servers), ``llamacpp`` (llama-cpp-python): the adapters.
"""
