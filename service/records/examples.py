"""One valid example body per message type, published as `schemas/examples/<type>.json`.

Every person, number and case here is fictitious; national numbers and MRZs carry
correct check digits so that the examples pass validation.
"""

from __future__ import annotations

from typing import Any, Final

_AIGERIM: Final[dict[str, Any]] = {
    "names": {
        "latin": {"surname": "ZHAKSYBEKOVA", "given_names": "AIGERIM"},
        "cyrillic": {
            "surname": "Жаксыбекова",
            "given_names": "Айгерим",
            "patronymic": "Нурлановна",
        },
    },
    "birth_date": "1991-03-14",
    "sex": "F",
    "citizenships": ["KAZ"],
    "birth_place": {"country": "KAZ", "locality": "Taraz"},
    "identifiers": [{"scheme": "KZ-IIN", "value": "910314401230"}],
    "documents": [
        {
            "type": "passport",
            "number": "N07654321",
            "issuing_state": "KAZ",
            "issue_date": "2019-06-20",
            "expiry_date": "2029-06-19",
            "mrz": [
                "P<KAZZHAKSYBEKOVA<<AIGERIM<<<<<<<<<<<<<<<<<<",
                "N076543217KAZ9103144F2906195910314401230<<66",
            ],
        }
    ],
}

_JAMSHID: Final[dict[str, Any]] = {
    "names": {
        "latin": {"surname": "KARIMOV", "given_names": "JAMSHID"},
        "cyrillic": {"surname": "Каримов", "given_names": "Жамшид", "patronymic": "Баходирович"},
    },
    "birth_date": "1995-07-22",
    "sex": "M",
    "citizenships": ["UZB"],
    "identifiers": [{"scheme": "UZ-PINFL", "value": "32207950260457"}],
    "documents": [
        {
            "type": "passport",
            "number": "FA1234567",
            "issuing_state": "UZB",
            "issue_date": "2022-05-15",
            "expiry_date": "2032-05-14",
            "mrz": [
                "P<UZBKARIMOV<<JAMSHID<<<<<<<<<<<<<<<<<<<<<<<",
                "FA12345673UZB9507225M32051493220795026045784",
            ],
        }
    ],
}

_SHERALI: Final[dict[str, Any]] = {
    "names": {
        "latin": {"surname": "RAHIMOV", "given_names": "SHERALI"},
        "cyrillic": {"surname": "Раҳимов", "given_names": "Шерали", "patronymic": "Давлатович"},
    },
    "birth_date": "1988-11-05",
    "sex": "M",
    "citizenships": ["TJK"],
    "identifiers": [{"scheme": "TJ-ID", "value": "A0312885"}],
}

_SHERALI_PASSPORT: Final[dict[str, Any]] = {
    "type": "passport",
    "number": "400123456",
    "issuing_state": "TJK",
    "issue_date": "2017-03-02",
    "expiry_date": "2027-03-01",
    "mrz": [
        "P<TJKRAHIMOV<<SHERALI<<<<<<<<<<<<<<<<<<<<<<<",
        "4001234563TJK8811053M2703017<<<<<<<<<<<<<<<4",
    ],
}

_ALMATY_AIRPORT: Final[dict[str, Any]] = {
    "name": "Almaty International Airport",
    "country": "KAZ",
}


def _observation(
    counterpart: str, indicator: str, sex: str, value: int | None, **attributes: str
) -> dict[str, Any]:
    return {
        "FREQ": "Q",
        "REF_AREA": "KAZ",
        "COUNTERPART_AREA": counterpart,
        "INDICATOR": indicator,
        "SEX": sex,
        "AGE": "_T",
        "TIME_PERIOD": "2024-Q1",
        "OBS_VALUE": value,
        "UNIT_MEASURE": attributes.get("unit", "PS"),
        "OBS_STATUS": attributes.get("status", "A"),
        "CONF_STATUS": attributes.get("conf", "F"),
    }


_STATISTICS: Final[dict[str, Any]] = {
    "dataset_id": "KZ-MIA-FLOWS-2024-Q1",
    "note": "Counts of persons; entries and exits at all border crossing points.",
    "structure": {
        "dsd": "MIGEX:MIGRATION_FLOWS(1.0)",
        "dimensions": {
            "FREQ": ["Q"],
            "REF_AREA": ["KAZ"],
            "COUNTERPART_AREA": ["UZB", "TJK", "KGZ"],
            "INDICATOR": ["ENTRY", "EXIT", "WORK_PERMIT", "EXPELLED"],
            "SEX": ["M", "F", "_T"],
            "AGE": ["_T"],
            "TIME_PERIOD": ["2024-Q1"],
        },
        "attributes": {
            "UNIT_MEASURE": ["PS", "NR"],
            "OBS_STATUS": ["A", "P", "M"],
            "CONF_STATUS": ["F", "C"],
        },
    },
    "observations": [
        _observation("UZB", "ENTRY", "M", 412377),
        _observation("UZB", "ENTRY", "F", 198204),
        _observation("UZB", "EXIT", "_T", 587930, status="P"),
        _observation("TJK", "ENTRY", "_T", 96112),
        _observation("TJK", "WORK_PERMIT", "_T", 3120, unit="NR"),
        _observation("KGZ", "ENTRY", "_T", 301554),
        _observation("KGZ", "EXPELLED", "F", None, status="M", conf="C"),
    ],
}

EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "statistics.migration-flows": _STATISTICS,
    "citizenship.verification-request": {
        "reason": "residence-permit-application",
        "case_reference": "KG-SRS/2025/001873",
        "person": _AIGERIM,
    },
    "citizenship.verification-response": {
        "result": "confirmed",
        "checked_on": "2025-05-06",
        "matched_fields": ["names.latin", "names.cyrillic", "birth_date", "identifiers"],
        "person": {"citizenships": ["KAZ"]},
    },
    "migration.violation-notice": {
        "case_reference": "KZ-MIA/ALM/2025/0412",
        "person": _JAMSHID,
        "violation": {
            "kind": "overstay",
            "detected_at": "2025-02-10",
            "entry_date": "2024-09-01",
            "legal_stay_until": "2024-11-29",
            "location": {"country": "KAZ", "region": "Almaty", "locality": "Almaty"},
            "grounds": [
                {
                    "act": "Code of the Republic of Kazakhstan on Administrative Offences",
                    "article": "517, part 1",
                }
            ],
        },
        "measures": [
            {
                "kind": "fine",
                "decision_date": "2025-02-11",
                "execution_date": "2025-02-14",
                "authority": "Migration Service, Almaty",
                "fine": {"amount": "98300", "currency": "KZT"},
            },
            {
                "kind": "expulsion",
                "decision_date": "2025-02-12",
                "execution_date": "2025-02-20",
                "authority": "Medeu District Court, Almaty",
                "decision_reference": "2-1187/2025",
                "border_crossing_point": {"name": "Zhibek Zholy", "country": "KAZ"},
            },
        ],
        "entry_ban": {"from": "2025-02-20", "until": "2030-02-19"},
    },
    "readmission.request": {
        "case_reference": "KZ-MIA/RA/2025/0031",
        "person": _SHERALI,
        "nationality_evidence": [
            {"basis": "proof", "document": _SHERALI_PASSPORT, "form": "certified-copy"},
            {
                "basis": "prima-facie",
                "document": {
                    "type": "birth-certificate",
                    "number": "I-ТД 123456",
                    "issuing_state": "TJK",
                    "issue_date": "1988-11-20",
                },
                "form": "copy",
            },
        ],
        "escort_needed": False,
        "proposed_transfer": {
            "date": "2025-04-15",
            "border_crossing_point": _ALMATY_AIRPORT,
            "transport": "air",
        },
        "reply_by": "2025-04-05",
    },
    "readmission.response": {
        "case_reference": "KZ-MIA/RA/2025/0031",
        "decision": "accepted",
        "decision_date": "2025-03-28",
        "deadlines": {"transfer_by": "2025-06-26"},
        "transfer": {
            "date": "2025-04-15",
            "border_crossing_point": _ALMATY_AIRPORT,
            "transport": "air",
        },
    },
    "experience.document": {
        "title": "Methodology for identifying forged travel documents at border crossing points",
        "kind": "methodology",
        "languages": ["ru", "kk"],
        "summary": (
            "How duty officers check the security features of passports of the four states, "
            "with the common forgeries found in 2023 and 2024 and the steps to take."
        ),
        "topics": ["document fraud", "border checks", "training"],
        "issued_by": "Migration Service, Ministry of Internal Affairs of Kazakhstan",
        "issued_on": "2025-03-17",
        "reference": "KZ-MIA/MS/2025/M-07",
        "serves": {
            "agreement": "cis-1998",
            "purpose": "experience-exchange",
            "provision": "Article 5",
            "objective": "common training of border and migration officers",
        },
        "attachments": [],
    },
    "receipt": {
        "status": "accepted",
        "digest": "sha-256:TTZAPwRW39w2yAdBHEAYY5xbmmdcL_xO4YMfF248YZI",
        "audit_index": 4711,
    },
    "audit.inclusion-proofs": {
        # tests/assets/c2sp/migex-delivery.tlog-proof: entry 3 of a log of seven.
        "checkpoint": (
            "migex/UZ:MIA\n"
            "7\n"
            "JmLtoRdbb10Xgr81CRs6hfSZi+DCDUCrGN4obivZYno=\n"
            "\n"
            "— migex/UZ:MIA N2z9P8aWFa35anRO/Qf4MJ1Q75FWp9ZKF+Rzf/vm/4ykApMQAkbhfwSnXUVpmeoEEZbTxEE0iA7xuKlcci65pJkY4gc=\n"
            "— migex/KZ:MIA/witness NYeFnAAAAABrBbieRtHkqsidjK40lLgGpYNoNGWtRKOfHntYj+HQI2NUtIZrfi2XBKmcKCuCo2VbjYhY0SKQgtCDjZ2Wt1gDxWxJCA==\n"
            "— migex/KG:MIA/witness VmXqqwAAAABrBbieii/Knhe+vmdwuOwg0fOZN6atE27/wYszHWL5tMjU1bf4tpbjYolfNJYftjsNVEXtwRzJ6nbgQOt2JpboDj2PBw==\n"
        ),
        "previous_size": 0,
        "consistency": [],
        "proofs": [
            {
                "index": 3,
                "message_id": "01a20e59-2c0f-7cb0-8484-9b18fcbbab03",
                "leaf_data": (
                    "eyJhZ3JlZW1lbnQiOiJrei11ei0yMDE5IiwiY29kZSI6bnVsbCwiZGV0YWlsIjp7fSwiZGlnZXN0"
                    "Ijoic2hhLTI1NjpBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFNIiwi"
                    "ZXZlbnQiOiJtZXNzYWdlLmFjY2VwdGVkIiwiZnJvbSI6IktaOk1JQSIsImluZGV4IjozLCJtZXNz"
                    "YWdlX2lkIjoiMDFhMjBlNTktMmMwZi03Y2IwLTg0ODQtOWIxOGZjYmJhYjAzIiwibm9kZSI6IlVa"
                    "Ok1JQSIsIm91dGNvbWUiOiJhY2NlcHRlZCIsInBhcnR5IjoiS1o6TUlBIiwicHVycG9zZSI6InN0"
                    "YXRpc3RpY3MiLCJydWxlIjoia3otb3V0LXN0YXRpc3RpY3MiLCJ0aW1lIjoiMjAyNi0xMS0yNFQx"
                    "NjoxNzoxNi40NThaIiwidG8iOiJVWjpNSUEiLCJ0eXBlIjoic3RhdGlzdGljcy5taWdyYXRpb24t"
                    "Zmxvd3MifQ=="
                ),
                "path": [
                    "2tjpnuoVZLT9rb+9lH8hlUZtneeKMda7Qwl/qSdY5g0=",
                    "EiVrMTdnWDXC/5Au8QZyQ6Io0q0HGYQdRVDPSNfJdc4=",
                    "oHRMBZi2w8qZZOUHoWhBxBp7CqQV3QjgY7GHqvYWsvU=",
                ],
            }
        ],
    },
}
