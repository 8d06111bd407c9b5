"""Time in questions as ranges (rag/text/periods.py): a table of German and English expressions
with the range each asks for, read on Wednesday 15 October 2025. The issue's bar: 95% exact."""

from datetime import date

import pytest

from rag.text.periods import asks_for_current, asks_for_first, find_period

TODAY = date(2025, 10, 15)  # a Wednesday, ISO week 42 (13 to 19 October)
D = date
EARLIEST = D(1900, 1, 1)

# (question, first day, last day); None: the question names no period.
TABLE = [
    # years
    ("Wie hoch war die Inflation 2024?", D(2024, 1, 1), D(2024, 12, 31)),
    ("Wie viele Asylanträge gab es im Jahr 2023?", D(2023, 1, 1), D(2023, 12, 31)),
    ("How many agreements were signed in 2025?", D(2025, 1, 1), D(2025, 12, 31)),
    ("What happened in the year 2022?", D(2022, 1, 1), D(2022, 12, 31)),
    # months with a year
    ("Wie hoch war die Inflation im September 2025?", D(2025, 9, 1), D(2025, 9, 30)),
    ("Was beschloss der Bundestag im Februar 2024?", D(2024, 2, 1), D(2024, 2, 29)),
    ("Who led the party in March 2025?", D(2025, 3, 1), D(2025, 3, 31)),
    ("What did the chancellor say in May 2024?", D(2024, 5, 1), D(2024, 5, 31)),
    ("Wie teuer war Strom im Dez. 2024?", D(2024, 12, 1), D(2024, 12, 31)),
    ("What was the price in Sept 2025?", D(2025, 9, 1), D(2025, 9, 30)),
    ("Wie entwickelte sich der DAX im Jänner 2025?", D(2025, 1, 1), D(2025, 1, 31)),
    # months without a year: the latest one not still to come
    ("Was geschah im September?", D(2025, 9, 1), D(2025, 9, 30)),
    ("Wer gewann die Wahl im März?", D(2025, 3, 1), D(2025, 3, 31)),
    ("Was sagte Merz im Oktober?", D(2025, 10, 1), D(2025, 10, 31)),
    ("Was passierte im Dezember?", D(2024, 12, 1), D(2024, 12, 31)),
    ("What did Putin announce in July?", D(2025, 7, 1), D(2025, 7, 31)),
    ("What happened in November?", D(2024, 11, 1), D(2024, 11, 30)),
    ("Which treaty was signed in May?", D(2025, 5, 1), D(2025, 5, 31)),
    ("Welche Zahlen meldete das Amt im Mai?", D(2025, 5, 1), D(2025, 5, 31)),
    # days
    ("Was geschah am 3. Oktober?", D(2025, 10, 3), D(2025, 10, 3)),
    ("Was sagte Xi am 2. September 2025?", D(2025, 9, 2), D(2025, 9, 2)),
    ("Was beschloss das Kabinett am 24.9.2025?", D(2025, 9, 24), D(2025, 9, 24)),
    ("Wie war das Wetter am 01.10.2025?", D(2025, 10, 1), D(2025, 10, 1)),
    ("Was wurde am 20. Dezember bekannt?", D(2024, 12, 20), D(2024, 12, 20)),
    ("What happened on 3 October?", D(2025, 10, 3), D(2025, 10, 3)),
    ("What happened on October 3?", D(2025, 10, 3), D(2025, 10, 3)),
    ("What did the court decide on September 2, 2025?", D(2025, 9, 2), D(2025, 9, 2)),
    ("What was announced on the 5th of June?", D(2025, 6, 5), D(2025, 6, 5)),
    ("What did the report of 2025-08-14 say?", D(2025, 8, 14), D(2025, 8, 14)),
    ("Wer sprach am 1. Mai 2024?", D(2024, 5, 1), D(2024, 5, 1)),
    ("What happened on May 1st 2024?", D(2024, 5, 1), D(2024, 5, 1)),
    # parts of a month
    ("Was geschah Anfang Oktober?", D(2025, 10, 1), D(2025, 10, 10)),
    ("Was geschah Mitte September?", D(2025, 9, 11), D(2025, 9, 20)),
    ("Was geschah Ende August?", D(2025, 8, 21), D(2025, 8, 31)),
    ("Was geschah Ende Februar 2024?", D(2024, 2, 21), D(2024, 2, 29)),
    ("What happened in early October?", D(2025, 10, 1), D(2025, 10, 10)),
    ("What happened in mid-September?", D(2025, 9, 11), D(2025, 9, 20)),
    ("What happened in late August 2025?", D(2025, 8, 21), D(2025, 8, 31)),
    ("What happened at the end of July?", D(2025, 7, 21), D(2025, 7, 31)),
    ("What happened at the beginning of March 2024?", D(2024, 3, 1), D(2024, 3, 10)),
    # parts of a year
    ("Was plant die Regierung Ende 2025?", D(2025, 10, 1), D(2025, 12, 31)),
    ("Was geschah Anfang 2024?", D(2024, 1, 1), D(2024, 3, 31)),
    ("What happened in early 2025?", D(2025, 1, 1), D(2025, 3, 31)),
    ("What is planned for the end of 2026?", D(2026, 10, 1), D(2026, 12, 31)),
    # weeks
    ("Was geschah in KW 40?", D(2025, 9, 29), D(2025, 10, 5)),
    ("Was meldete die Polizei in der KW 38/2025?", D(2025, 9, 15), D(2025, 9, 21)),
    ("Was geschah in der Kalenderwoche 1 2025?", D(2024, 12, 30), D(2025, 1, 5)),
    ("What happened in week 41?", D(2025, 10, 6), D(2025, 10, 12)),
    ("What happened in calendar week 52, 2024?", D(2024, 12, 23), D(2024, 12, 29)),
    # quarters and halves
    ("Wie wuchs die Wirtschaft im dritten Quartal?", D(2025, 7, 1), D(2025, 9, 30)),
    ("Wie wuchs die Wirtschaft im zweiten Quartal 2024?", D(2024, 4, 1), D(2024, 6, 30)),
    ("Wie hoch war der Umsatz im 1. Quartal 2025?", D(2025, 1, 1), D(2025, 3, 31)),
    ("Wie hoch war der Gewinn im Q2 2025?", D(2025, 4, 1), D(2025, 6, 30)),
    ("How did the economy grow in the third quarter?", D(2025, 7, 1), D(2025, 9, 30)),
    ("What were the sales in Q4 2024?", D(2024, 10, 1), D(2024, 12, 31)),
    ("How much was spent in the fourth quarter?", D(2025, 10, 1), D(2025, 12, 31)),  # begun: this year's, as a month
    ("Was geschah im ersten Halbjahr 2025?", D(2025, 1, 1), D(2025, 6, 30)),
    ("What happened in the second half of 2024?", D(2024, 7, 1), D(2024, 12, 31)),
    # ranges
    ("Was geschah zwischen Mai und Juli?", D(2025, 5, 1), D(2025, 7, 31)),
    ("Was geschah zwischen Mai und Juli 2024?", D(2024, 5, 1), D(2024, 7, 31)),
    ("Was geschah zwischen November und Februar?", D(2024, 11, 1), D(2025, 2, 28)),
    ("Was geschah von März bis Juni 2025?", D(2025, 3, 1), D(2025, 6, 30)),
    ("Wie stiegen die Preise zwischen 2022 und 2024?", D(2022, 1, 1), D(2024, 12, 31)),
    ("Was geschah vom 1. bis 15. Oktober?", D(2025, 10, 1), D(2025, 10, 15)),
    ("Was geschah zwischen dem 3. und dem 10. September?", D(2025, 9, 3), D(2025, 9, 10)),
    ("What happened between the 3rd and the 10th of September?", D(2025, 9, 3), D(2025, 9, 10)),
    ("What happened between May and July?", D(2025, 5, 1), D(2025, 7, 31)),
    ("What happened from March to June 2024?", D(2024, 3, 1), D(2024, 6, 30)),
    ("How did prices change between 2021 and 2023?", D(2021, 1, 1), D(2023, 12, 31)),
    ("What happened between 1 September and 3 October?", D(2025, 9, 1), D(2025, 10, 3)),
    # relative days, weeks, months, years
    ("Was sagte der Minister gestern?", D(2025, 10, 14), D(2025, 10, 14)),
    ("Was geschah vorgestern?", D(2025, 10, 13), D(2025, 10, 13)),
    ("Was meldet die Polizei heute?", D(2025, 10, 15), D(2025, 10, 15)),
    ("Was ist für morgen geplant?", D(2025, 10, 16), D(2025, 10, 16)),
    ("What did the minister say yesterday?", D(2025, 10, 14), D(2025, 10, 14)),
    ("What happened the day before yesterday?", D(2025, 10, 13), D(2025, 10, 13)),
    ("What is planned for tomorrow?", D(2025, 10, 16), D(2025, 10, 16)),
    ("Was geschah letzte Woche?", D(2025, 10, 6), D(2025, 10, 12)),
    ("Was beschloss der Rat vergangene Woche?", D(2025, 10, 6), D(2025, 10, 12)),
    ("Was geschah in der vergangenen Woche?", D(2025, 10, 6), D(2025, 10, 12)),
    ("Was geschah diese Woche?", D(2025, 10, 13), D(2025, 10, 15)),
    ("Was ist nächste Woche geplant?", D(2025, 10, 20), D(2025, 10, 26)),
    ("What happened last week?", D(2025, 10, 6), D(2025, 10, 12)),
    ("What happened this week?", D(2025, 10, 13), D(2025, 10, 15)),
    ("What is planned for next week?", D(2025, 10, 20), D(2025, 10, 26)),
    ("What happened in the past week?", D(2025, 10, 8), D(2025, 10, 15)),
    ("Was geschah letzten Monat?", D(2025, 9, 1), D(2025, 9, 30)),
    ("Was geschah im vergangenen Monat?", D(2025, 9, 1), D(2025, 9, 30)),
    ("Was geschah diesen Monat?", D(2025, 10, 1), D(2025, 10, 15)),
    ("Was ist nächsten Monat geplant?", D(2025, 11, 1), D(2025, 11, 30)),
    ("What happened last month?", D(2025, 9, 1), D(2025, 9, 30)),
    ("What happened this month?", D(2025, 10, 1), D(2025, 10, 15)),
    ("Was geschah letztes Jahr?", D(2024, 1, 1), D(2024, 12, 31)),
    ("Was geschah im vergangenen Jahr?", D(2024, 1, 1), D(2024, 12, 31)),
    ("Was geschah in diesem Jahr?", D(2025, 1, 1), D(2025, 10, 15)),
    ("Was ist nächstes Jahr geplant?", D(2026, 1, 1), D(2026, 12, 31)),
    ("What happened last year?", D(2024, 1, 1), D(2024, 12, 31)),
    ("What happened this year?", D(2025, 1, 1), D(2025, 10, 15)),
    ("What is planned for next year?", D(2026, 1, 1), D(2026, 12, 31)),
    ("Was geschah vor drei Wochen?", D(2025, 9, 22), D(2025, 9, 28)),
    ("Was geschah vor zwei Tagen?", D(2025, 10, 13), D(2025, 10, 13)),
    ("Was geschah vor einem Monat?", D(2025, 9, 1), D(2025, 9, 30)),
    ("Was geschah vor zwei Jahren?", D(2023, 1, 1), D(2023, 12, 31)),
    ("What happened three weeks ago?", D(2025, 9, 22), D(2025, 9, 28)),
    ("What happened a month ago?", D(2025, 9, 1), D(2025, 9, 30)),
    ("What happened 2 days ago?", D(2025, 10, 13), D(2025, 10, 13)),
    ("Was geschah in den letzten drei Wochen?", D(2025, 9, 24), D(2025, 10, 15)),
    ("Was geschah in den vergangenen 7 Tagen?", D(2025, 10, 8), D(2025, 10, 15)),
    ("What happened in the last three weeks?", D(2025, 9, 24), D(2025, 10, 15)),
    ("What happened over the past 6 months?", D(2025, 4, 15), D(2025, 10, 15)),
    # since and until
    ("Wie viele Streiks gab es seit 2024?", D(2024, 1, 1), D(2025, 10, 15)),
    ("Was hat sich seit März geändert?", D(2025, 3, 1), D(2025, 10, 15)),
    ("Was geschah seit dem 3. September?", D(2025, 9, 3), D(2025, 10, 15)),
    ("Was hat sich seit letzter Woche geändert?", D(2025, 10, 6), D(2025, 10, 15)),
    ("Was geschah seit drei Wochen?", D(2025, 9, 24), D(2025, 10, 15)),
    ("How many strikes have there been since 2024?", D(2024, 1, 1), D(2025, 10, 15)),
    ("What has changed since March?", D(2025, 3, 1), D(2025, 10, 15)),
    ("What has changed since last month?", D(2025, 9, 1), D(2025, 10, 15)),
    ("Was geschah bis Ende August?", EARLIEST, D(2025, 8, 31)),
    ("Was war bis August bekannt?", EARLIEST, D(2025, 8, 31)),
    ("Was war bis zum 3. Oktober bekannt?", EARLIEST, D(2025, 10, 3)),
    ("Was geschah vor 2024?", EARLIEST, D(2023, 12, 31)),
    ("What was known until the end of August?", EARLIEST, D(2025, 8, 31)),
    ("What was known until August?", EARLIEST, D(2025, 8, 31)),
    ("What happened before 2024?", EARLIEST, D(2023, 12, 31)),
    ("What was decided by September 2025?", EARLIEST, D(2025, 9, 30)),
    # no period named
    ("Wie viele Kooperationsabkommen unterzeichneten beide Seiten?", None, None),
    ("Wer führt derzeit die Partei?", None, None),
    ("Seit wann ist sie Ministerin?", None, None),
    ("Who is the current minister of finance?", None, None),
    ("May I ask who signed the treaty?", None, None),
    ("Wie viele der 20 Abkommen betreffen Energie?", None, None),
    ("How many of the 3 reactors are still running?", None, None),
]

# Written after the rules above were settled, and not tuned to: how the rules do on forms they were
# not shaped on. Two misses, kept: seasons are not read ("Herbst 2024" gives the year), nor "previous week".
HELD_OUT = [
    ("Welche Beschlüsse fasste die EU im April 2025?", D(2025, 4, 1), D(2025, 4, 30)),
    ("Wie hoch war die Arbeitslosigkeit im Juni?", D(2025, 6, 1), D(2025, 6, 30)),
    ("Was kündigte die Bahn am 12. August an?", D(2025, 8, 12), D(2025, 8, 12)),
    ("Was geschah am 7.3.2024?", D(2024, 3, 7), D(2024, 3, 7)),
    ("Welche Zahlen gab es Mitte Juli 2025?", D(2025, 7, 11), D(2025, 7, 20)),
    ("Was passierte in der KW 41?", D(2025, 10, 6), D(2025, 10, 12)),
    ("Wie entwickelte sich der Export im vierten Quartal 2024?", D(2024, 10, 1), D(2024, 12, 31)),
    ("Was geschah zwischen Januar und März 2025?", D(2025, 1, 1), D(2025, 3, 31)),
    ("Was meldete die Regierung vorige Woche?", D(2025, 10, 6), D(2025, 10, 12)),
    ("Was geschah vor vier Tagen?", D(2025, 10, 11), D(2025, 10, 11)),
    ("Was hat sich seit Juni 2025 verändert?", D(2025, 6, 1), D(2025, 10, 15)),
    ("Was galt bis Ende Juni?", EARLIEST, D(2025, 6, 30)),
    ("Was geschah in den letzten zwei Monaten?", D(2025, 8, 15), D(2025, 10, 15)),
    ("Was sagte der Kanzler am Montag?", None, None),
    ("Was geschah im Herbst 2024?", None, None),
    ("What did the central bank decide in April 2025?", D(2025, 4, 1), D(2025, 4, 30)),
    ("What happened on June 30?", D(2025, 6, 30), D(2025, 6, 30)),
    ("What were the figures in mid-July?", D(2025, 7, 11), D(2025, 7, 20)),
    ("What happened in Q1?", D(2025, 1, 1), D(2025, 3, 31)),
    ("What happened between January and March 2025?", D(2025, 1, 1), D(2025, 3, 31)),
    ("What happened four days ago?", D(2025, 10, 11), D(2025, 10, 11)),
    ("What has changed since June 2025?", D(2025, 6, 1), D(2025, 10, 15)),
    ("What applied until the end of June?", EARLIEST, D(2025, 6, 30)),
    ("What happened in the last two months?", D(2025, 8, 15), D(2025, 10, 15)),
    ("What happened in the first half of the year?", D(2025, 1, 1), D(2025, 6, 30)),
    ("What was reported on 14 September 2025?", D(2025, 9, 14), D(2025, 9, 14)),
    ("Who won the election in 2021?", D(2021, 1, 1), D(2021, 12, 31)),
    ("What happened during the previous week?", D(2025, 10, 6), D(2025, 10, 12)),
    ("Wie viele Menschen demonstrierten am Wochenende?", None, None),
    ("What happened in late 2024?", D(2024, 10, 1), D(2024, 12, 31)),
]


def read(question: str):
    period = find_period(question, TODAY)
    return (period.start, period.end) if period else (None, None)


def test_the_table_is_large_and_covers_both_languages():
    assert len(TABLE) >= 100
    german = sum(1 for q, *_ in TABLE if any(w in q for w in ("Was ", "Wie ", "Wer ", "Welche ", "Seit ")))
    assert german >= 50 and len(TABLE) - german >= 45


@pytest.mark.parametrize("table, bar", [(TABLE, 0.95), (HELD_OUT, 0.9)], ids=["table", "held-out"])
def test_at_least_95_percent_of_the_expressions_are_read_exactly(table, bar):
    wrong = [(q, (s, e), read(q)) for q, s, e in table if read(q) != (s, e)]
    exact = 1 - len(wrong) / len(table)
    assert exact >= bar, f"{exact:.1%} exact; wrong: {wrong}"


@pytest.mark.parametrize("question", ["Wer führt derzeit die Partei?", "Wie hoch ist die Inflation aktuell?",
                                      "Ist er noch Minister?", "Who is the current chancellor?",
                                      "What is the latest estimate?", "Is he still in office?"])
def test_recency_words_ask_for_the_current_state(question):
    assert asks_for_current(question) and find_period(question, TODAY) is None


def test_questions_for_the_first_evidence():
    assert asks_for_first("Seit wann ist sie Ministerin?") and asks_for_first("Since when has he led the party?")
    assert asks_for_first("When did the strike first start?")
    assert not asks_for_first("Wie viele Abkommen wurden unterzeichnet?")
