"""The official openai client against the simulator, in each dialect."""
import openai
import pytest

from conftest import DIALECTS


def client(sim):
    return openai.OpenAI(base_url=sim.url + "/v1", api_key="unused", max_retries=0, timeout=30)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_completions_chat_and_streams(start_sim, dialect):
    sim = start_sim("--dialect", dialect)
    api = client(sim)

    models = api.models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert models.data[0].owned_by == dialect

    completion = api.completions.create(model="tiny", prompt="Once upon a time", max_tokens=7)
    assert completion.object == "text_completion"
    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].text) == 7 * 4
    assert completion.usage.completion_tokens == 7
    assert completion.usage.prompt_tokens == 4
    assert completion.usage.prompt_tokens_details.cached_tokens == 0

    chat = api.chat.completions.create(
        model="tiny", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}],
        max_tokens=5)
    assert chat.object == "chat.completion"
    assert chat.choices[0].message.role == "assistant"
    assert len(chat.choices[0].message.content) == 20
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + 5

    chunks = list(api.completions.create(
        model="tiny", prompt="Once upon a time", max_tokens=7, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == completion.choices[0].text, "same prompt, same answer"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"

    stream = api.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Tell me more"}], max_tokens=6, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(content) == 24
    assert chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 0

    plain = list(api.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "no usage please"}], max_tokens=3, stream=True))
    assert all(c.usage is None for c in plain), "no usage chunk unless include_usage is set"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_natural_stop_and_token_id_prompts(start_sim, dialect):
    sim = start_sim("--dialect", dialect)
    api = client(sim)
    # Without max_tokens the answer ends where the model stops by itself (the tiny profile's
    # median is 24 tokens), with finish_reason "stop".
    answer = api.completions.create(model="tiny", prompt="Say something")
    assert answer.choices[0].finish_reason == "stop"
    assert 1 <= answer.usage.completion_tokens < 2000
    by_ids = api.completions.create(model="tiny", prompt=[101, 102, 103, 104, 105], max_tokens=2)
    assert by_ids.usage.prompt_tokens == 5
    seeded = [api.completions.create(model="tiny", prompt="x", max_tokens=4, seed=s).choices[0].text for s in (1, 1, 2)]
    assert seeded[0] == seeded[1] != seeded[2]


def test_message_parts_and_max_completion_tokens(start_sim):
    sim = start_sim()
    api = client(sim)
    chat = api.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": [{"type": "text", "text": "part one"}]}],
        max_completion_tokens=3)
    assert chat.usage.completion_tokens == 3
