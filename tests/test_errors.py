"""Each upstream error body maps to the sentence a person reads."""
import pytest

from providers import errors

REQUEST_ID = '"request_id":"4909100c-7b5a-9f92-bfe5-000000000000"'

DASHSCOPE_CASES = [
    (401, '{"error":{"message":"Incorrect API key provided. ","type":"invalid_request_error",'
          '"param":null,"code":"invalid_api_key"},' + REQUEST_ID + '}', errors.InvalidKey),
    (401, '{"code":"InvalidApiKey","message":"Invalid API-key provided.",' + REQUEST_ID + '}',
     errors.InvalidKey),
    (400, '{"error":{"message":"Access denied, please make sure your account is in good standing.",'
          '"type":"Arrearage","param":null,"code":"Arrearage"},' + REQUEST_ID + '}', errors.NoCredit),
    (400, 'data: {"error":{"code":"data_inspection_failed","message":"Input data may contain '
          'inappropriate content.","type":"data_inspection_failed","id":"chatcmpl-1"}}\n\n',
     errors.InputModerated),
    (400, '{"error":{"code":"invalid_parameter_error","message":"Range of input length should be '
          '[1, 129024]","param":null,"type":"invalid_request_error"},' + REQUEST_ID + '}',
     errors.InputTooLong),
    (404, '{"error":{"message":"The model `Qwen-Plus` does not exist or you do not have access to it.",'
          '"type":"invalid_request_error","param":null,"code":"model_not_found"},' + REQUEST_ID + '}',
     errors.ModelNotFound),
    (404, "", errors.ModelNotFound),
    (403, '{"code":"AccessDenied","message":"current user api does not support synchronous calls",'
          + REQUEST_ID + '}', errors.AccessDenied),
    (429, '{"error":{"message":"Requests rate limit exceeded, please try again later.",'
          '"type":"limit_requests","param":null,"code":"limit_requests"},' + REQUEST_ID + '}',
     errors.RateLimited),
    (429, '{"code":"Throttling.AllocationQuota","message":"Free allocated quota exceeded.",'
          + REQUEST_ID + '}', errors.QuotaExceeded),
    (429, '{"error":{"message":"You exceeded your current quota","type":"insufficient_quota",'
          '"param":null,"code":"insufficient_quota"}}', errors.QuotaExceeded),
    (500, '{"code":"InternalError","message":"An internal error has occured",' + REQUEST_ID + '}',
     errors.ServerBusy),
    (502, "<html><body>502 Bad Gateway</body></html>", errors.ServerBusy),
    (503, "", errors.ServerBusy),
]


@pytest.mark.parametrize("status, body, expected", DASHSCOPE_CASES)
def test_dashscope_error_bodies_map_to_their_type(status, body, expected):
    error = errors.dashscope_error(status, body)
    assert type(error) is expected
    assert error.user_message.endswith("。")


OPENROUTER_CASES = [
    (400, '{"error":{"message":"openai/gpt-9 is not a valid model ID","code":400},"user_id":"u"}',
     "厂商/模型"),
    (401, '{"error":{"message":"User not found.","code":401}}', "OpenRouter API Key 无效"),
    (401, '{"error":{"message":"No cookie auth credentials found","code":401}}', "OpenRouter API Key 无效"),
    (402, '{"error":{"code":402,"message":"Insufficient credits","metadata":{"limit_source":"account"}}}',
     "openrouter.ai/credits"),
    (403, '{"error":{"code":403,"message":"Input flagged by moderation","metadata":{"reasons":["x"]}}}',
     "审核"),
    (408, '{"error":{"code":408,"message":"Request timed out"}}', "超时"),
    (429, '{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-min."}}', "请求过多"),
    (502, '{"error":{"code":502,"message":"Provider returned error"}}', "换一个模型"),
    (503, '{"error":{"code":503,"message":"No allowed providers are available"}}', "换一个模型"),
]


@pytest.mark.parametrize("status, body, sentence", OPENROUTER_CASES)
def test_openrouter_error_bodies_map_to_their_sentence(status, body, sentence):
    assert sentence in errors.openrouter_error(status, body).user_message


def test_output_moderation_inside_a_dashscope_stream_keeps_the_partial_answer():
    error = errors.dashscope_stream_error({"code": "data_inspection_failed", "message": "Output data"})
    assert isinstance(error, errors.OutputModerated)
    assert "已保留" in error.user_message


def test_only_rate_limits_and_busy_servers_are_retried():
    assert errors.dashscope_error(429, '{"code":"Throttling.RateQuota"}').is_retryable
    assert errors.dashscope_error(503, "").is_retryable
    assert not errors.dashscope_error(429, '{"code":"Throttling.AllocationQuota"}').is_retryable
    assert not errors.dashscope_error(400, '{"code":"Arrearage"}').is_retryable


def test_retry_after_is_kept():
    assert errors.openrouter_error(429, "{}", retry_after=2.0).retry_after == 2.0


def test_retried_calls_again_only_while_the_error_is_retryable():
    from providers.retry import retried
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise errors.DownloadFailed("HTTP 503", retry_after=0.001)
        return "picture"

    assert retried(flaky, 3, delay=0) == "picture" and len(calls) == 3
    calls.clear()
    with pytest.raises(errors.DownloadFailed):
        retried(flaky, 2, delay=0)  # the last error is raised
    calls.clear()
    with pytest.raises(errors.DownloadFailed):
        retried(flaky, 3, lambda error: isinstance(error, errors.RateLimited), delay=0)
    assert len(calls) == 1


def test_openrouter_context_length_is_explained_as_too_long():
    body = '{"error":{"code":400,"message":"This endpoint\'s maximum context length is 131072 tokens."}}'
    assert isinstance(errors.openrouter_error(400, body), errors.InputTooLong)


def test_an_openrouter_403_inside_a_stream_is_output_moderation():
    assert isinstance(errors.openrouter_stream_error({"code": 403, "message": "flagged"}), errors.OutputModerated)
    assert isinstance(errors.openrouter_stream_error({"code": 502, "message": "x"}), errors.StreamFailed)
