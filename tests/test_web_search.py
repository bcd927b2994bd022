"""Web search on providers that search themselves: Anthropic's server-side `web_search` tool and
Gemini's Google Search grounding become a `web_search_call` item with OpenAI's
`response.web_search_call.*` events, and `url_citation` annotations on the text; sources only
under `include`. Fake upstreams send each provider's documented search blocks."""

from __future__ import annotations

from fake_anthropic import CITATION, SEARCH_RESULTS
from fake_gemini import GROUNDED, GROUNDING
from helpers import create, stream, types

SEARCH = {"type": "web_search", "filters": {"allowed_domains": ["weather.example"]}, "user_location": {"type": "approximate", "city": "Paris", "country": "FR"}}


def _calls(response: dict) -> list[dict]:
    return [item for item in response["output"] if item["type"] == "web_search_call"]


def _annotations(response: dict) -> list[dict]:
    return [a for item in response["output"] if item["type"] == "message" for part in item["content"] for a in part.get("annotations", ())]


def test_anthropic_searches_on_its_side(multi, fake_anthropic):
    events = stream(multi, model="claude-search", input="Weather in Paris?", tools=[SEARCH], include=["web_search_call.action.sources"])
    sent = fake_anthropic.last()
    assert sent["tools"] == [
        {
            "type": "web_search_20250305",
            "name": "web_search",
            "allowed_domains": ["weather.example"],
            "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
        }
    ]
    names = types(events)
    stages = [name for name in names if name.startswith("response.web_search_call.")]
    assert stages == ["response.web_search_call.in_progress", "response.web_search_call.searching", "response.web_search_call.completed"]
    assert "response.output_text.annotation.added" in names
    response = events[-1]["response"]
    assert [item["type"] for item in response["output"]] == ["message", "web_search_call", "message"]
    call = _calls(response)[0]
    assert call["status"] == "completed" and call["action"]["query"] == "weather in Paris" and call["action"]["queries"] == ["weather in Paris"]
    assert [source["url"] for source in call["action"]["sources"]] == [result["url"] for result in SEARCH_RESULTS]
    cited = "It is sunny and 21°C."
    assert _annotations(response) == [{"type": "url_citation", "url": CITATION["url"], "title": CITATION["title"], "start_index": 0, "end_index": len(cited)}]
    assert response["output"][2]["content"][0]["text"] == cited


def test_anthropic_search_without_streaming_and_without_sources(multi, fake_anthropic):
    response = create(multi, model="claude-search", input="Weather in Paris?", tools=[{"type": "web_search"}])
    call = _calls(response)[0]
    assert "sources" not in call["action"] and call["action"]["query"] == "weather in Paris"
    assert len(_annotations(response)) == 1
    # the next turn goes on from the text: the search call is Anthropic's own, not replayed
    create(multi, model="claude-text", input="Thanks", previous_response_id=response["id"])
    history = fake_anthropic.last()["messages"]
    assert all(block["type"] == "text" for message in history for block in message["content"])


def test_a_search_cut_short_ends_failed(multi):
    events = stream(multi, model="claude-search-cut", input="Weather in Paris?", tools=[{"type": "web_search"}])
    assert types(events)[-1] == "response.failed"
    assert [item["status"] for item in _calls(events[-1]["response"])] == ["failed"]  # the spec's statuses have no "incomplete"


def test_gemini_grounds_with_google_search(multi, fake_gemini):
    events = stream(multi, model="gemini-search", input="Météo à Paris ?", tools=[{"type": "web_search"}], include=["web_search_call.action.sources"])
    assert fake_gemini.last()["tools"] == [{"google_search": {}}]
    response = events[-1]["response"]
    assert [item["type"] for item in response["output"]] == ["message", "web_search_call"]
    call = _calls(response)[0]
    assert call["action"]["queries"] == GROUNDING["webSearchQueries"]
    assert [s["url"] for s in call["action"]["sources"]] == [GROUNDING["groundingChunks"][0]["web"]["uri"]]
    annotation = _annotations(response)[0]
    text = response["output"][0]["content"][0]["text"]
    assert text[annotation["start_index"] : annotation["end_index"]] == GROUNDED  # byte offsets read as characters
    assert annotation["title"] == "meteo.example"
    assert "response.web_search_call.completed" in types(events)


def test_gemini_search_with_function_tools_and_no_stream(multi, fake_gemini):
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    response = create(multi, model="gemini-search", input="Weather?", tools=[{"type": "web_search"}, weather])
    assert fake_gemini.last()["tools"][0] == {"google_search": {}} and "functionDeclarations" in fake_gemini.last()["tools"][1]
    assert _calls(response)[0]["status"] == "completed" and "sources" not in _calls(response)[0]["action"]
    assert response["tools"][0]["type"] == "web_search"
