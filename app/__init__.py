"""ARDM Studio, the desktop app: mask character spans and watch the model fill them.

Widgets live here; everything that touches the model runs in one worker thread
(app.worker) through the decoding engine's session API (docs/ENGINE_API.md).
Modules without Qt (settings, autosave, masking, run_record, jobs, frames) can
be used and tested on their own.
"""
