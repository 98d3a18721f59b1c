"""Assemble a ready Recommender from settings: the one place components are wired together."""
from __future__ import annotations

from data.home import RuntimeHome
from data.store import Dataset
from retrieval.embedder import Embedder
from retrieval.item_index import ItemIndex
from retrieval.profiles import ProfileStore
from retrieval.vector_store import ChromaLocation, open_client

from assistant.recommender import Recommender
from assistant.retriever_training import SEQUENTIAL_KIND, publish_sequential_vectors, sequential_model_dir
from assistant.settings import Settings
from retrieval.sequential import MODEL_FILE


def chroma_location(settings: Settings) -> ChromaLocation:
    if settings.chroma_host:
        return ChromaLocation(host=settings.chroma_host, port=settings.chroma_port)
    return ChromaLocation(path=RuntimeHome(settings.home).chroma)


def open_embedder(settings: Settings) -> Embedder:
    return Embedder(cache_path=RuntimeHome(settings.home).embedding_cache())


class NotIngested(RuntimeError):
    pass


def build_recommender(settings: Settings, embedder: Embedder | None = None) -> Recommender:
    home = RuntimeHome(settings.home)
    dataset = Dataset(home.dataset_db(settings.dataset))
    client = open_client(chroma_location(settings))
    index = ItemIndex(client, settings.dataset)
    if index.count() == 0:
        raise NotIngested(f"the {settings.dataset} vectors are not in {chroma_location(settings).describe()}; "
                          f"run `recsys ingest --dataset {settings.dataset}`")
    profiles = ProfileStore(client, settings.dataset, settings.profile)
    sequential, sequential_index = None, None
    model_dir = sequential_model_dir(home, settings.dataset)
    if (model_dir / MODEL_FILE).exists():
        from retrieval.sequential import SASRecRetriever

        sequential = SASRecRetriever.load(model_dir)
        sequential_index = ItemIndex(client, settings.dataset, kind=SEQUENTIAL_KIND, space="ip")
        if sequential_index.count() == 0:  # trained but never published (or a fresh Chroma server)
            publish_sequential_vectors(dataset, sequential, client)
    collaborative = None
    if home.collaborative_model(settings.dataset).exists():
        from retrieval.collaborative import CollaborativeModel

        collaborative = CollaborativeModel.load(home.collaborative_model(settings.dataset))
    return Recommender(dataset, index, profiles, embedder or open_embedder(settings), settings.fusion,
                       settings.max_k, sequential=sequential, sequential_index=sequential_index,
                       collaborative=collaborative, blend=settings.blend)


def build_assistant(settings: Settings, embedder: Embedder | None = None, writer: bool = True):
    """The turn engine; `writer=False` skips loading the explanation writer's model (batch runs, which
    never stream explanations)."""
    from assistant.assistant import Assistant
    from data.feedback import FeedbackStore

    recommender = build_recommender(settings, embedder)
    store = FeedbackStore(RuntimeHome(settings.home).feedback_db())
    assistant = Assistant(recommender, store, default_k=settings.default_k, diversity=settings.diversity)
    from assistant.turn_log import TurnLog

    assistant.turn_log = TurnLog(RuntimeHome(settings.home).logs / "turns.jsonl", include_text=settings.log_requests)
    if settings.reranker == "auto":
        from assistant.lm_serving import ServingReranker
        from finetune.adapters import AdapterRegistry

        home = RuntimeHome(settings.home)
        registry = AdapterRegistry.of_home(home)
        if registry.serving():
            assistant.lm = ServingReranker(registry)
            assistant.lm.current()  # starts loading in the background
    if writer:
        assistant.writer = build_explanation_writer(settings, recommender)
    return assistant


def build_explanation_writer(settings: Settings, recommender):
    """The configured explanation writer, or None (the template explanations stand)."""
    if settings.explanation_writer == "none":
        return None
    from assistant.explanation_writer import build_writer

    home = RuntimeHome(settings.home)
    adapter = None
    if settings.explanation_adapter:
        from finetune.adapters import AdapterRegistry

        registry = AdapterRegistry.of_home(home)
        version = registry.serving() if settings.explanation_adapter == "serving" else settings.explanation_adapter
        if version is None:
            raise KeyError(f"explanation_adapter=serving but no adapter is serving in {home.adapters}")
        adapter = registry.path(version)
    return build_writer(settings.explanation_writer, home.models, recommender, adapter=adapter)


def start_refresh_scheduler(settings: Settings, assistant, log=print):
    """The periodic refresh of `recsys serve`; None when both triggers are off."""
    from assistant.refresh_scheduler import RefreshScheduler

    if settings.refresh_every_events <= 0 and settings.refresh_every_minutes <= 0:
        return None
    scheduler = RefreshScheduler(assistant.store, settings.dataset, settings.refresh_every_events,
                                 settings.refresh_every_minutes, settings.refresh_model, log=log)
    scheduler.start()
    return scheduler
