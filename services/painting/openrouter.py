"""Painting with an OpenRouter image model: one long call per picture, no task to poll."""
import logging

from providers import errors
from providers.downloads import decode_data_url
from services import settings as provider_settings
from services.failures import Failure
from services.painting.files import save_image, source_data_url
from services.painting.outcome import settle

log = logging.getLogger(__name__)

def paint(task):
    """One call per picture asked for: an OpenRouter image model answers each call with one."""
    client = provider_settings.client("openrouter")
    problems, usages = [], []
    for index in range(task.n):
        try:
            picture = source_data_url(task) if task.is_edit else None
            urls, generation_id, usage = client.generate_images(task.model, request_text(task),
                                                                aspect_ratio(task.width, task.height), picture)
            task.request_id = generation_id
            usages.append(usage)
            if urls:
                save_image(task, index, *decode_data_url(urls[0]), "", generation_id)
            else:
                problems.append(Failure("text_instead_of_picture"))
        except errors.ProviderError as exc:
            log.warning("OpenRouter image task %s: %s (%s)", task.id, exc.__class__.__name__, exc.detail)
            problems.append(Failure.of(exc))
            if not exc.is_retryable:
                problems += [Failure.of(exc)] * (task.n - index - 1)  # the next calls would fail alike
                break
        except Exception:
            log.exception("OpenRouter image task %s failed", task.id)
            problems.append(Failure("painting_broke"))
            break
    settle(task, problems, usages)


def request_text(task):
    """The text the model is sent: the person's prompt, and the negative prompt as words
    (these models take no negative prompt)."""
    if task.negative_prompt:
        return f"{task.prompt}\n\n画面中不要出现：{task.negative_prompt}"
    return task.prompt


def aspect_ratio(width, height):
    ratios = {"1:1": 1, "16:9": 16 / 9, "9:16": 9 / 16, "4:3": 4 / 3, "3:4": 3 / 4, "3:2": 1.5, "2:3": 2 / 3}
    return min(ratios, key=lambda name: abs(ratios[name] - width / height))
