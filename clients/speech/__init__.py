"""Speech: text to speech through OpenAI's ``POST /v1/audio/speech`` (Kokoro-FastAPI, openedai-speech, LocalAI, a
LiteLLM proxy...). The client (:mod:`.client`), the wire shapes (:mod:`.protocol`) and an offline stand-in that really
speaks with eSpeak NG (:mod:`.standin`, never shipped).

Plain Python: nothing in this package imports bpy.
"""
