"""The painting and editing forms, read like contact-app's `Contact.validate()`: what was typed
stays as typed (`values`, shown again when something is wrong), each wrong field gets a
sentence (`errors`), and the new task's clean fields are built beside them (`fields`)."""
import random

from flask_babel import format_number, gettext, lazy_gettext

from models import ImageTask
from providers import MODEL_ID
from services import settings as provider_settings
from services.forms import to_int

MIN_SIDE, MAX_SIDE = 512, 1440
MAX_NEGATIVE = 500
LONG_PROMPT_MODELS = ("wan2.5", "wan2.6")  # these take prompts up to 2,000 characters
MAX_LONG_PROMPT = 2000


def prompt_limit(model):
    return MAX_LONG_PROMPT if model.startswith(LONG_PROMPT_MODELS) else ImageTask.MAX_PROMPT


class TaskForm:
    """What both forms ask: the prompt, the service and model, how many pictures, and the
    provider's two switches. Each form asks for a missing prompt or model in its own words."""
    missing_prompt = missing_model = ""

    def __init__(self, form, **values):
        self.values = {"prompt": form.get("prompt", "").strip(), "provider": form.get("provider", "").strip(),
                       "model": form.get("model", "").strip(), "n": form.get("n", "").strip(),
                       "prompt_extend": form.get("prompt_extend") == "on",
                       "watermark": form.get("watermark") == "on", **values}
        self.errors = {}
        self.fields = self.validate()

    def validate(self):
        """The new ImageTask's fields; a sentence in `errors` for each wrong one."""
        values = self.values
        limit = prompt_limit(values["model"])
        if not values["prompt"]:
            self.errors["prompt"] = self.missing_prompt
        elif len(values["prompt"]) > limit:
            self.errors["prompt"] = gettext("提示词最多 %(limit)s 字（现在 %(length)s 字）。", limit=limit,
                                            length=format_number(len(values["prompt"])))
        n = self.number("n", 1, 4, gettext("张数应为 1–4。"))
        self.check_provider_and_model()
        return {"provider": values["provider"], "model": values["model"], "prompt": values["prompt"], "n": n,
                "prompt_extend": values["prompt_extend"], "watermark": values["watermark"]}

    def number(self, key, low, high, problem, error_key=None):
        """The field `key` as a whole number from `low` to `high`; else None, and `problem`."""
        number = to_int(self.values[key])
        if number is None or not low <= number <= high:
            self.errors[error_key or key] = problem
            return None
        return number

    def check_provider_and_model(self):
        if self.values["provider"] not in provider_settings.PROVIDERS:
            self.errors["provider"] = gettext("请选择一个模型服务。")
        if not MODEL_ID.match(self.values["model"]):
            self.errors["model"] = self.missing_model
        elif self.values["provider"] == "openrouter" and "/" not in self.values["model"]:
            self.errors["model"] = gettext("OpenRouter 的模型名称形如「厂商/模型」，例如 google/gemini-2.5-flash-image。")


class PaintingForm(TaskForm):
    """The painting form (/images). A preset size stands for its width and height."""
    missing_prompt = lazy_gettext("请写下想画的内容。")
    missing_model = lazy_gettext("请填写模型名称，例如 wan2.2-t2i-flash。")

    def __init__(self, form):
        size = form.get("size", "").strip()
        width, height = ((form.get("width", "").strip(), form.get("height", "").strip()) if size == "custom"
                         else (size or "1024*1024").partition("*")[::2])
        super().__init__(form, negative_prompt=form.get("negative_prompt", "").strip(), size=size,
                         width=width, height=height, seed=form.get("seed", "").strip())

    def validate(self):
        fields = super().validate()
        if len(self.values["negative_prompt"]) > MAX_NEGATIVE:
            self.errors["negative_prompt"] = gettext("反向提示词最多 %(limit)s 字。", limit=MAX_NEGATIVE)
        sides = {"min": MIN_SIDE, "max": MAX_SIDE}
        width = self.number("width", MIN_SIDE, MAX_SIDE, gettext("宽度应为 %(min)s–%(max)s 之间的整数（像素）。", **sides), "size")
        height = self.number("height", MIN_SIDE, MAX_SIDE, gettext("高度应为 %(min)s–%(max)s 之间的整数（像素）。", **sides), "size")
        seed = random.randint(0, ImageTask.MAX_SEED)  # chosen here, so that it can be reused
        if self.values["seed"]:
            seed = self.number("seed", 0, ImageTask.MAX_SEED,
                               gettext("随机种子应为 0–%(max)s 的整数，留空则随机。", max=ImageTask.MAX_SEED))
        return {**fields, "negative_prompt": self.values["negative_prompt"], "width": width, "height": height,
                "seed": seed}


class EditForm(TaskForm):
    """The editing form ("改这张图"). `source`: the picture to change, as the view found it
    (its file, size, gallery Image and the field that names it); one picture by default."""
    missing_prompt = lazy_gettext("请写下想怎么改，例如：把天空改成晚霞。")
    missing_model = lazy_gettext("请填写模型名称，例如 wan2.5-i2i-preview。")

    def __init__(self, form, source):
        super().__init__(form, n=form.get("n", "1").strip(), **source)

    def validate(self):
        fields = super().validate()
        return {**fields, "width": self.values["width"], "height": self.values["height"],
                "seed": random.randint(0, ImageTask.MAX_SEED), "source_file": self.values["source_file"],
                "source_image_id": self.values["source_image"].id if self.values["source_image"] else None}
