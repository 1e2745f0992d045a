"""Building blocks of the shipped synthetic raw datasets (see ``scripts/make_raw_data.py``).

Modules:

- :mod:`raw_data.pii`: fake but checksum-valid PII values (Luhn card numbers,
  mod-97 IBANs, SSN, phones, e-mails, IPv4) used to plant a few known PII
  records for the PII gate.
- :mod:`raw_data.support`: fictional bank/insurer customer-support exchanges,
  built from slot lists (products, issues, actions) combined at random.
- :mod:`raw_data.arithmetic`: arithmetic questions and word problems with
  worked answers.
- :mod:`raw_data.general`: definitions, how-to answers and everyday topics.
- :mod:`raw_data.corpus`: plain text for training the tokenizer.
- :mod:`raw_data.builders`: the record shapes of each file (SFT, preference,
  KTO, GRPO, RLHF prompts), annotations included.

Everything draws from one ``random.Random`` passed in by the caller, so a run
with the same seed writes byte-identical files.
"""
