"""Short definitions, how-to answers, science facts and open prompts.

Definitions and how-tos are fixed knowledge; the wordings around them come
from slot lists (question forms, audiences, tones), so each fact appears in
several distinct questions.
"""

from __future__ import annotations

import random

DEFINITIONS = {
    "compound interest": "interest calculated on the original amount and on the interest already added, so savings "
                         "grow faster over time than with simple interest",
    "an insurance premium": "the price you pay, monthly or yearly, to keep an insurance policy active",
    "a deductible": "the part of an insurance claim that the policyholder pays before the insurer pays the rest",
    "an overdraft": "a negative balance allowed on a current account, usually with a fee or interest",
    "inflation": "the general rise in prices over time, which lowers what a fixed amount of money can buy",
    "a credit score": "a number that summarises how reliably someone has repaid debts, used by lenders to judge risk",
    "an annual percentage rate": "the yearly cost of a loan including interest and fees, written as a percentage",
    "diversification": "spreading money across different investments so that one loss hurts less",
    "liquidity": "how quickly an asset can be turned into cash without losing value",
    "a mortgage": "a loan used to buy property, secured against that property",
    "an emergency fund": "savings set aside for unexpected costs, often three to six months of expenses",
    "a direct debit": "an instruction that lets a company collect payments from your account on agreed dates",
    "underwriting": "the process an insurer or lender uses to assess risk and set the price or terms",
    "a claim": "a formal request to an insurer to pay for a loss covered by the policy",
    "photosynthesis": "the process plants use to turn light, water and carbon dioxide into sugar and oxygen",
    "gravity": "the force by which masses attract one another; it keeps planets in orbit around the sun",
    "an atom": "the smallest unit of a chemical element, made of a nucleus and surrounding electrons",
    "evaporation": "the change of a liquid into a gas at its surface, as when a puddle dries in the sun",
    "a prime number": "a whole number greater than 1 whose only divisors are 1 and itself, such as 2, 3, 5 and 7",
    "an average": "the sum of a set of numbers divided by how many numbers there are",
    "a percentage": "a number expressed as a fraction of 100, so 25% means 25 out of every 100",
    "a fraction": "a way to write part of a whole as one number over another, such as 3/4",
    "an ecosystem": "a community of living things interacting with each other and their environment",
    "the water cycle": "the continuous movement of water through evaporation, condensation and precipitation",
    "a budget": "a plan for how to spend and save income over a period such as a month",
    "two-factor authentication": "a login check that needs a second proof, such as a one-time code, besides a password",
    "phishing": "a scam where someone pretends to be a trusted company to trick people into revealing details",
    "a firewall": "software or hardware that filters network traffic to block unwanted connections",
    "a vaccine": "a preparation that trains the immune system to recognise a germ without causing the disease",
    "renewable energy": "energy from sources that are naturally replenished, such as sunlight, wind and water",
    "a recession": "a period when economic activity falls for several months, often with rising unemployment",
    "a dividend": "a share of a company's profit paid out to its shareholders",
}

HOWTOS = {
    "make a monthly budget": "List your income, write down fixed costs such as rent, set targets for variable "
                             "costs, put a fixed amount into savings first, and review the numbers each month.",
    "spot a phishing e-mail": "Check the sender's address, be wary of urgent threats, hover over links before "
                              "clicking, and never enter passwords from a link in an e-mail.",
    "build an emergency fund": "Pick a target such as three months of expenses, open a separate savings account, "
                               "set up an automatic transfer on payday, and top it up after using it.",
    "improve a credit score": "Pay every bill on time, keep card balances well below the limit, avoid many "
                              "applications at once, and check your report for errors.",
    "choose a strong password": "Use a long passphrase of several unrelated words, never reuse it, and store "
                                "it in a password manager.",
    "prepare for a job interview": "Research the company, practise answers to common questions aloud, prepare "
                                   "two questions of your own, and plan your route so you arrive early.",
    "keep houseplants healthy": "Give them the right light for their type, water only when the top soil is dry, "
                                "and feed them lightly in spring and summer.",
    "reduce food waste": "Plan meals before shopping, store leftovers in clear containers, use the oldest food "
                         "first, and freeze bread and fruit before they spoil.",
    "compare insurance quotes": "Compare the same cover level, check the deductible and exclusions, read "
                                "reviews of claim handling, and look at the total yearly cost.",
    "calculate a percentage": "Divide the part by the whole and multiply by 100; for example 18 out of 24 is "
                              "18 ÷ 24 × 100 = 75%.",
    "check a bank statement": "Go through each line, match payments to receipts, look for charges you do not "
                              "recognise, and report anything odd to the bank quickly.",
    "save energy at home": "Turn the heating down by one degree, switch off standby devices, wash clothes at "
                           "lower temperatures, and seal draughts around windows.",
    "learn a new language": "Practise a little every day, learn the most common words first, listen to native "
                            "speakers, and speak early even if you make mistakes.",
    "write a clear e-mail": "State the purpose in the first line, keep paragraphs short, list any actions "
                            "needed with dates, and end with a clear next step.",
    "pay off debt faster": "List debts by interest rate, pay the minimum on all, put every extra dollar toward "
                           "the most expensive one, and avoid new borrowing meanwhile.",
    "back up important files": "Keep three copies on two kinds of storage with one copy off site, and test "
                               "restoring a file now and then.",
}

SCIENCE_FACTS = [
    "Water boils at 100 degrees Celsius at sea level, and at a lower temperature on a high mountain.",
    "Light from the sun takes about eight minutes to reach the Earth.",
    "The human heart beats roughly 100,000 times a day.",
    "Plants release oxygen as a by-product of photosynthesis.",
    "Sound travels faster in water than in air, and faster still in steel.",
    "The Earth completes one orbit of the sun in about 365.25 days, which is why leap years exist.",
    "An adult human body contains 206 bones.",
    "Ice floats because water expands when it freezes, making ice less dense than liquid water.",
    "The moon's gravity causes the tides in the oceans.",
    "Diamonds and graphite are both made of carbon atoms arranged in different structures.",
    "Bees communicate the direction of flowers to each other with a waggle dance.",
    "Copper is a good conductor of electricity, which is why it is used in wiring.",
    "A rainbow appears when sunlight is refracted and reflected inside raindrops.",
    "Vaccines train the immune system to recognise a germ before a real infection.",
    "Mount Everest grows a few millimetres each year as tectonic plates push together.",
    "The speed of light in a vacuum is about 300,000 kilometres per second.",
    "Most of the Earth's fresh water is frozen in ice caps and glaciers.",
    "Octopuses have three hearts and blue blood.",
    "Salt lowers the freezing point of water, which is why it is spread on icy roads.",
    "A leap year has 366 days, with the extra day added to February.",
]

ASK_DEFINITION = ["What is {t}?", "Can you explain what {t} is?", "Define {t} in one or two sentences.",
                  "What does {t} mean?", "I keep hearing about {t}. What is it?", "Explain {t} simply."]
ASK_HOWTO = ["How do I {t}?", "What's the best way to {t}?", "Any tips on how to {t}?", "How can I {t}?",
             "Give me a few steps to {t}.", "I want to {t}. Where do I start?"]
AUDIENCES = ["a ten-year-old", "a new customer", "a busy manager", "a first-year student", "my grandparents",
             "someone who has never had a bank account", "a small business owner"]
RLHF_FORMS = [
    "Explain {d} to {a}.", "Write a short note to {a} about how to {h}.", "Give three practical tips on how to {h}.",
    "Why does it matter to understand {d}? Answer for {a}.", "Compare {d} and {d2} in a few sentences.",
    "Write a friendly reply to a customer who asks about {d}.", "Summarise in two sentences how to {h}.",
    "What are common mistakes people make when they try to {h}?", "Describe {d} with an everyday example.",
    "A customer is upset about {n}. Write a calm, helpful reply.",
]


def define(term: str, rng: random.Random) -> tuple[str, str]:
    """A definition question and its answer."""
    body = DEFINITIONS[term]
    answer = rng.choice([f"{term[0].upper() + term[1:]} is {body}.", f"In short, {term} is {body}.",
                         f"{term[0].upper() + term[1:]} means {body}."])
    return rng.choice(ASK_DEFINITION).format(t=term), answer


def howto(task: str, rng: random.Random) -> tuple[str, str]:
    """A how-to question and its answer."""
    lead = rng.choice(["", "Here is a simple approach. ", "A few steps help. ", "Start small. "])
    return rng.choice(ASK_HOWTO).format(t=task), lead + HOWTOS[task]


def bad_general(subject: str, rng: random.Random) -> str:
    """An unhelpful reply about ``subject``: curt, vague, wrong-headed or padded."""
    return rng.choice([
        "Google it.", f"Everyone knows about {subject}. Not worth explaining.",
        f"It's complicated. {subject.capitalize()} depends on a lot of things, so I can't say.",
        f"{subject.capitalize()} is not really important, so you can ignore it.",
        f"Well, {subject} is a topic that many people have discussed at great length over many years, and opinions "
        "differ widely, so it is hard to give any single answer that would satisfy everyone in every situation.",
    ])


def rlhf_prompt(rng: random.Random, nouns: list[str]) -> str:
    """One open-ended prompt composed from a form, a topic and an audience."""
    d, d2 = rng.sample(sorted(DEFINITIONS), 2)
    return rng.choice(RLHF_FORMS).format(d=d, d2=d2, a=rng.choice(AUDIENCES), h=rng.choice(sorted(HOWTOS)),
                                         n=rng.choice(nouns))
