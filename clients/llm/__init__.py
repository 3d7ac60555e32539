"""The LLM backend: script text and shot lists from an OpenAI-compatible server (a LiteLLM proxy first).

Plain Python: nothing in this package imports bpy. ``client`` holds the backend client and its in-loop API,
``stream`` one streamed answer, ``sse`` the event-stream decoder, ``protocol`` the wire format and error mapping,
``conversation`` prompt history and context-window fitting, ``structured`` and ``shots`` validated JSON answers.
"""
