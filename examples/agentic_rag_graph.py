"""Agentic RAG as a LangGraph graph: retrieve, grade, rewrite, answer, with citations end to end.

Mirrors notebooks/06_agentic_rag_langgraph.ipynb. AI Search retrieves; a chat model grades each
passage, rewrites the query when none is relevant, and writes the answer with `[n]` markers,
which become standard `Citation` annotations pointing at the passages (url or key, cited text).

The model is a small scripted stand-in (no LLM, no network) unless `AISEARCH_AGENT_MODEL`
names a real one for `init_chat_model` (e.g. `openai:gpt-4.1-mini`, with `OPENAI_API_KEY` and
`pip install langchain-openai`); the graph is the same either way.

Needs `pip install "aisearch-py[examples]"` (LangChain, LangGraph and the local server). Nothing
to start first: without Cloudflare credentials the script starts its own local AI Search server
(`aisearch_local` on 127.0.0.1, a free port, a temporary data directory) and stops it at the
end; `make serve` is not needed.

    python examples/agentic_rag_graph.py
"""

from __future__ import annotations

import os
import re
from typing import Any, TypedDict

from _target import coffee_target
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import END, START, StateGraph

from langchain_aisearch import AISearchRetriever
from langchain_aisearch.middleware import add_citations
from langchain_aisearch.tools import format_documents

QUESTIONS = (
    "How long should a light roast rest before brewing it as espresso?",
    "My pulls gush and taste puckering, remedy?",
)

GRADE = "You grade search results. Reply 'yes' if the passage helps answer the question, else 'no'."
REWRITE = (
    "Rewrite the question as a better search query for a coffee knowledge base. "
    "Reply with the query only."
)
ANSWER = (
    "Answer the question from the numbered passages only, in two sentences at most. Cite each "
    "passage you use by its number in square brackets, e.g. [1], right after the claim."
)

# ----------------------------------------------------------------------- the model


_STOP = frozenset(
    {"a", "an", "and", "are", "as", "at", "be", "before", "by", "can", "change", "do", "does"}
    | {"for", "from", "how", "i", "in", "is", "it", "my", "of", "on", "or", "should", "so"}
    | {"than", "that", "the", "this", "to", "what", "when", "which", "why", "with", "you", "your"}
)
# what a real model knows and the stand-in is told: the knowledge base's words for the user's
_GLOSSARY = {"pulls": "espresso", "gush": "fast", "puckering": "sour", "remedy": "fix"}


def keywords(text: str) -> set[str]:
    """The content words of `text`, in the knowledge base's vocabulary."""
    words = re.findall(r"[a-z][a-z-]{2,}", text.lower())
    return {_GLOSSARY.get(w, w) for w in words if w not in _STOP}


class ScriptedRAGModel(BaseChatModel):
    """A stand-in for an LLM that follows the three prompts above with word overlap."""

    @property
    def _llm_type(self) -> str:
        return "scripted-rag"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Any = None,  # noqa: ARG002
        run_manager: Any = None,  # noqa: ARG002
        **kwargs: Any,  # noqa: ARG002
    ) -> ChatResult:
        task, prompt = messages[0].text, messages[-1].text
        question = prompt.split("\n")[0].removeprefix("Question: ")
        if task == GRADE:
            passage = prompt.partition("Passage:\n")[2]
            text = "yes" if len(keywords(question) & keywords(passage)) >= 3 else "no"
        elif task == REWRITE:
            text = " ".join(sorted(keywords(question)))
        else:
            text = scripted_answer(question, prompt.partition("Passages:\n")[2])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(text))])


def scripted_answer(question: str, passages: str) -> str:
    """The sentence of each of the two best passages that shares most words with the question."""
    wanted = keywords(question)
    found = []
    for block in re.split(r"\n\s*\n(?=\[\d+\] )", passages.strip()):
        number, _, body = block.partition("\n")
        sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", body)]
        claims = [s for s in sentences if len(s) > 30 and s[0].isupper() and s[-1] != "?"]
        best = max(claims or sentences, key=lambda s: len(wanted & keywords(s)))
        found.append((len(wanted & keywords(best)), number.split("]")[0] + "]", best.strip("# |")))
    found.sort(key=lambda f: -f[0])
    return " ".join(f"{sentence.rstrip('.')} {n}." for _, n, sentence in found[:2])


def pick_model() -> BaseChatModel:
    """`AISEARCH_AGENT_MODEL` through `init_chat_model` when set, else the scripted stand-in."""
    name = os.environ.get("AISEARCH_AGENT_MODEL")
    if not name:
        return ScriptedRAGModel()
    from langchain.chat_models import init_chat_model

    return init_chat_model(name, temperature=0)


# ----------------------------------------------------------------------- the graph


class RAGState(TypedDict, total=False):
    question: str
    query: str
    documents: list[Document]  # retrieved
    relevant: list[Document]  # graded relevant: the sources the answer cites
    rewrites: int
    answer: AIMessage


def build_graph(retriever: AISearchRetriever, model: BaseChatModel, max_rewrites: int = 1) -> Any:
    def retrieve(state: RAGState) -> RAGState:
        query = state.get("query") or state["question"]
        return {"query": query, "documents": retriever.invoke(query)}

    def grade(state: RAGState) -> RAGState:
        def relevant(doc: Document) -> bool:
            prompt = f"Question: {state['question']}\n\nPassage:\n{doc.page_content}"
            verdict = model.invoke([SystemMessage(GRADE), HumanMessage(prompt)]).text
            return verdict.strip().lower().startswith("yes")

        return {"relevant": [d for d in state["documents"] if relevant(d)]}

    def rewrite(state: RAGState) -> RAGState:
        prompt = f"Question: {state['question']}"
        query = model.invoke([SystemMessage(REWRITE), HumanMessage(prompt)]).text.strip()
        return {"query": query, "rewrites": state.get("rewrites", 0) + 1}

    def answer(state: RAGState) -> RAGState:
        sources = state["relevant"] or state["documents"]
        prompt = f"Question: {state['question']}\n\nPassages:\n{format_documents(sources)}"
        message = model.invoke([SystemMessage(ANSWER), HumanMessage(prompt)])
        # the [n] markers become Citation annotations pointing at sources[n - 1]
        return {"answer": add_citations(message, sources), "relevant": sources}

    def after_grading(state: RAGState) -> str:
        if state["relevant"] or state.get("rewrites", 0) >= max_rewrites:
            return "answer"
        return "rewrite"

    graph = StateGraph(RAGState)
    graph.add_node("retrieve", retrieve)
    graph.add_node("grade", grade)
    graph.add_node("rewrite", rewrite)
    graph.add_node("answer", answer)
    graph.add_edge(START, "retrieve")
    graph.add_edge("retrieve", "grade")
    graph.add_conditional_edges("grade", after_grading, ["answer", "rewrite"])
    graph.add_edge("rewrite", "retrieve")
    graph.add_edge("answer", END)
    return graph.compile()


def show(result: RAGState, steps: list[str]) -> None:
    print(f"Q: {result['question']}")
    print(f"   path: {' -> '.join(steps)}")
    print(f"   query: {result['query']!r}  ({len(result['relevant'])} relevant passages)")
    answer = result["answer"]
    print(f"   A: {answer.text}")
    for block in answer.content_blocks:
        for note in dict(block).get("annotations", []):
            n = note["extras"]["source_index"]
            where = note.get("url") or note.get("title")
            print(f"   citation [{n}] -> {where}: {' '.join(note['cited_text'].split())[:70]}...")
    print()


def main() -> None:
    model = pick_model()
    print(
        "model:",
        type(model).__name__,
        "(scripted stand-in)" if isinstance(model, ScriptedRAGModel) else "",
    )
    with coffee_target() as target:
        retriever = AISearchRetriever(instance_id=target.instance, k=3, **target.connection)
        app = build_graph(retriever, model)
        for question in QUESTIONS:
            steps: list[str] = []
            result: RAGState = {}
            for update in app.stream({"question": question}, stream_mode="updates"):
                for node, change in update.items():
                    steps.append(node)
                    result.update(change)
            show({"question": question, **result}, steps)


if __name__ == "__main__":
    main()
