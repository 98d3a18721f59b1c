"""`recsys forget --user ID`: erase everything held about one person, and say what was erased.

Erased: their interactions in the stored data set (and they stay out of any rebuild from the raw
files), every feedback event (which is also what refresh replay draws from), their profile vector
in Chroma, and their session state in this process. Not erasable: adapters already trained on
data that included them (see README, Privacy).
"""
from __future__ import annotations

from dataclasses import dataclass

from data.feedback import FeedbackStore
from data.forgotten import ForgottenUsers
from data.home import RuntimeHome
from data.store import delete_user
from retrieval.profiles import ProfileStore


@dataclass
class ForgetReport:
    dataset: str
    user_id: str
    interactions: int
    feedback_events: int
    profile: bool

    def describe(self) -> str:
        return (f"forgot user {self.user_id!r} in {self.dataset}: {self.interactions} interactions, "
                f"{self.feedback_events} feedback events, {'1 profile vector' if self.profile else 'no profile vector'}"
                f" removed; they stay out of future rebuilds of {self.dataset}")


def forget_user(home: RuntimeHome, dataset: str, user_id: str, feedback: FeedbackStore,
                profiles: ProfileStore) -> ForgetReport:
    if not user_id or not user_id.strip():
        raise ValueError("give the id of the user to forget")
    ForgottenUsers(home.forgotten_users()).add(dataset, user_id)  # first: a crash below still keeps them out
    interactions = delete_user(home.dataset_db(dataset), user_id) if home.dataset_db(dataset).exists() else 0
    events = feedback.forget_user(dataset, user_id)
    profile = profiles.delete(user_id)
    return ForgetReport(dataset, user_id, interactions, events, profile)
