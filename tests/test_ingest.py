"""Real ML-100K ingest into a temporary home; re-ingest is idempotent and embeds only changes."""
from dataclasses import replace

from assistant.ingest import index_dataset, ingest_movielens
from data.store import Dataset, write_dataset
from retrieval.item_index import ItemIndex
from retrieval.profiles import ProfileStore, ProfileWeights


def test_ml100k_lands_in_store_and_chroma(ml100k):
    home, client, report = ml100k
    dataset = Dataset(home.dataset_db("ml-100k"))
    assert dataset.item_count() == 1682
    assert report.interactions == 100_000
    assert report.users == 943
    assert ItemIndex(client, "ml-100k").count() == 1682
    profiles = ProfileStore(client, "ml-100k", ProfileWeights())
    assert all(profiles.get(u) is not None for u in dataset.user_ids())  # other tests add new users' profiles
    assert profiles.count() >= 943
    titles = {i.title for i in dataset.items()}
    assert "The Usual Suspects" in titles and "Usual Suspects, The" not in titles
    matched, total = report.summary_coverage
    assert total == 1682 and 50 < matched < total
    described = [i for i in dataset.items() if i.description]
    assert len(described) == matched


def test_reingest_is_idempotent_and_embeds_only_changes(tmp_home, embedder):
    from retrieval.vector_store import ChromaLocation, open_client

    client = open_client(ChromaLocation(path=tmp_home.chroma))
    first = ingest_movielens(tmp_home, "ml-100k", client, embedder, ProfileWeights(), progress=False)
    assert first.sync.added == 1682
    before = embedder.encoded_count
    second = ingest_movielens(tmp_home, "ml-100k", client, embedder, ProfileWeights(), progress=False)
    assert (second.sync.added, second.sync.updated, second.sync.removed, second.sync.unchanged) == (0, 0, 0, 1682)
    assert embedder.encoded_count == before
    assert ItemIndex(client, "ml-100k").count() == 1682

    dataset = Dataset(tmp_home.dataset_db("ml-100k"))
    items = dataset.items()
    items[0] = replace(items[0], description="A brand new synopsis nobody has embedded before.")
    write_dataset(tmp_home.dataset_db("ml-100k"), items[:-1], [], meta={})
    third, _, _ = index_dataset(Dataset(tmp_home.dataset_db("ml-100k")), client, embedder, ProfileWeights(), False)
    assert (third.added, third.updated, third.removed) == (0, 1, 1)
    assert embedder.encoded_count == before + 2  # the item's text and its one description passage
    assert ItemIndex(client, "ml-100k").count() == 1681
