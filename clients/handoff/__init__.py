"""The hand-off: a rough cut leaving Blender as OpenTimelineIO (and EDL / FCP XML), subtitles and a storyboard sheet.

Plain Python: this package never imports bpy. The Blender layer (``operators/cut_reader.py``) reads the Sequencer
into the frozen description in :mod:`.cut`; the modules here turn it into files, and an OpenTimelineIO file back
into that description for an import.
"""
