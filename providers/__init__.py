"""One small client per upstream API (dashscope.py, openrouter.py) and what they share."""
import re

# A model id as the providers spell them: qwen-plus, openai/gpt-4o, meta-llama/x:free.
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$")
