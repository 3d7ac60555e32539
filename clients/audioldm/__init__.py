"""AudioLDM sound effects: the client (:mod:`.client`), a duration probe for its files (:mod:`.probe`) and a stand-in
Gradio app for tests and demos (:mod:`.standin`).

Plain Python: nothing in this package imports bpy.
"""
