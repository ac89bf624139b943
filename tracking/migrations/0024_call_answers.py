"""The TwiML answers kept for replayed webhooks move out of ``Call.decision`` (the routing state, which the report
rollups watch) into ``Call.answers``. Calls still in progress take theirs along (a retried webhook must get the same
answer); a finished call's old answers are left where they are, unread (``CallState.from_json`` ignores them), so
the migration does not rewrite the whole call history. Nullable without a default: SQLite adds the column in place,
without rebuilding the table (which would drop its triggers)."""

from django.db import migrations, models

FINAL = ["completed", "busy", "no_answer", "failed", "canceled", "rejected"]


def answers_move(apps, schema_editor):
    Call = apps.get_model("tracking", "Call")
    for call in Call.objects.exclude(status__in=FINAL).only("pk", "decision").iterator(chunk_size=500):
        decision = call.decision if isinstance(call.decision, dict) else {}
        if "answers" in decision:
            answers = decision.pop("answers")
            Call.objects.filter(pk=call.pk).update(answers=answers if isinstance(answers, dict) else {}, decision=decision)


def answers_back(apps, schema_editor):
    Call = apps.get_model("tracking", "Call")
    for call in Call.objects.exclude(answers=None).only("pk", "decision", "answers").iterator(chunk_size=500):
        decision = call.decision if isinstance(call.decision, dict) else {}
        Call.objects.filter(pk=call.pk).update(decision={**decision, "answers": call.answers})


class Migration(migrations.Migration):

    dependencies = [
        ("tracking", "0023_rollup_marks_changes_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="call",
            name="answers",
            field=models.JSONField(blank=True, editable=False, help_text="The TwiML answered to each webhook of the call.", null=True),
        ),
        migrations.RunPython(answers_move, answers_back),
    ]
