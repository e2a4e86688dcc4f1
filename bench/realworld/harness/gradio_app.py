"""A one-textbox Gradio Interface launched the documented way (demo.launch).

Usage: python gradio_app.py PORT   (GRADIO_TEMP_DIR set by the contract: the upload folder
whose files the /file= route serves). The benchmark runs it with the target's own interpreter.
"""
import sys

import gradio as gr

port = int(sys.argv[1])
demo = gr.Interface(fn=lambda text: text, inputs="text", outputs="text")
demo.launch(server_name="127.0.0.1", server_port=port, show_api=False)
