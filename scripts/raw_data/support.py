"""Fictional bank and insurer customer support, composed from slot lists.

Each :class:`Task` holds a few user wordings, the steps of a good answer, a
follow-up question with its answer, and a noun phrase for generic bad answers.
:func:`exchange` combines a task with a company, an opener, a closer and the
task's slots, so ~20 tasks yield hundreds of distinct conversations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

BANKS = ["Northwind Bank", "Cedar Valley Credit Union", "Bluewater Bank", "Granite Savings"]
INSURERS = ["Harbor Mutual", "Summit Shield Insurance", "Evergreen Assurance"]
CARDS = ["credit card", "debit card", "business card", "travel card"]
ACCOUNTS = ["checking account", "savings account", "joint account", "student account"]
POLICIES = ["home insurance policy", "car insurance policy", "renters policy", "travel insurance policy"]
INCIDENTS = ["storm damage to the roof", "a burst pipe in the kitchen", "a minor car accident in a car park",
             "stolen luggage on a trip", "a cracked windscreen", "water damage from a neighbour's flat"]

USER_OPENERS = ["", "", "Hi, ", "Hello, ", "Hi there. ", "Quick question: ", "Good morning. ", "Sorry to bother you, "]
OPENERS = ["", "", "Happy to help. ", "Sure. ", "Thanks for reaching out. ", "Of course. ", "Good question. "]
CLOSERS = ["", "", " Let me know if anything is unclear.", " Is there anything else I can help with?",
           " I hope that helps.", " Feel free to reply here if you get stuck."]
USER_SUFFIXES = ["", "", "", " Thanks in advance.", " I'm using the mobile app.", " This is a bit urgent.",
                 " I'm a new customer.", " I couldn't find it in the FAQ.", " Thanks!"]
FOLLOWUP_OPENERS = ["Thanks. ", "Great, thanks. ", "OK. ", "Got it. ", ""]


@dataclass(frozen=True)
class Task:
    """One support topic: wordings, a good answer, a follow-up and a noun for bad answers."""

    name: str
    domain: str  # "bank" or "insurance"
    asks: tuple[str, ...]
    steps: str
    followup: tuple[str, str]
    noun: str


TASKS = [
    Task("lost_card", "bank", ("I lost my {card}. What should I do?",
         "My {card} is missing, I think I left it in a taxi.", "How do I block my {card}? I can't find it anywhere."),
         "Freeze the card straight away in the {company} app under Cards > Freeze, then order a replacement from the "
         "same screen. A new card usually arrives in 3 to 5 working days and any pending payments stay safe.",
         ("Will my automatic payments stop?", "Subscriptions move to the new card automatically for most merchants; "
          "check any that fail in the first week and update them by hand."), "a lost card"),
    Task("dispute_charge", "bank", ("There is a charge on my {card} I don't recognise.",
         "I see a payment of {amount} dollars that I never made. How do I dispute it?",
         "Someone charged my {card} {amount} dollars. Can you reverse it?"),
         "Open the transaction in the app and choose Report a problem. We will ask a few questions, block the card if "
         "it looks like fraud, and give you a temporary credit while we investigate, usually within 10 working days.",
         ("How long does the investigation take?", "Most disputes are settled within 30 days; complex ones can take "
          "up to 60, and you keep the temporary credit meanwhile."), "a disputed charge"),
    Task("reset_password", "bank", ("I forgot my online banking password.", "How do I reset my password for the app?",
         "I'm locked out of online banking after too many attempts."),
         "On the login screen tap Forgot password, confirm the one-time code we send to your registered phone, and "
         "choose a new password of at least 12 characters. If you are locked out, the lock lifts after 30 minutes.",
         ("Can I use my old password again?", "No, the last five passwords cannot be reused, for your security."),
         "a forgotten password"),
    Task("update_address", "bank", ("I moved house. How do I update my address?", "How can I change the address on "
         "my {account}?", "Where do I change my mailing address?"),
         "Go to Profile > Personal details > Address in the app, enter the new address and confirm with the one-time "
         "code. Statements and new cards will go to the new address from the next business day.",
         ("Do I need to send proof of address?", "Only if the app asks for it; in that case a recent utility bill "
          "uploaded as a photo is enough."), "an address change"),
    Task("transfer_limit", "bank", ("What is the daily transfer limit on my {account}?",
         "I need to send {amount} dollars today. Is that over my limit?", "Can I raise my daily transfer limit?"),
         "The standard daily limit for transfers to other people is 5,000 dollars. You can raise it for 24 hours under "
         "Payments > Limits, which asks you to confirm with a one-time code.",
         ("Does the limit include card payments?", "No, card spending has its own separate limit."),
         "a transfer limit"),
    Task("international_transfer", "bank", ("How long does an international transfer take?",
         "What fees do you charge to send money abroad?", "I want to send {amount} euros to my sister in Spain."),
         "International transfers in major currencies usually arrive in 1 to 2 working days. We charge a flat fee of "
         "8 dollars plus the exchange margin shown before you confirm, so you always see the total first.",
         ("Is there a cut-off time?", "Transfers confirmed before 3 pm on a working day leave the same day."),
         "an international transfer"),
    Task("overdraft_fee", "bank", ("Why was I charged an overdraft fee?", "I got an overdraft fee of {fee} dollars. "
         "Can it be refunded?", "My {account} went negative by a few dollars and now there is a fee."),
         "The fee applies when the balance stays below zero at the end of the day. If this is the first time in 12 "
         "months, you can request a one-time refund under Help > Fees; turning on low-balance alerts avoids repeats.",
         ("How do I turn on the alerts?", "Go to Settings > Notifications > Low balance and pick the amount that "
          "should trigger a message."), "an overdraft fee"),
    Task("direct_deposit", "bank", ("How do I set up direct deposit for my salary?", "My employer needs my account "
         "details for payroll. Where do I find them?", "Where can I get a direct deposit form?"),
         "Open your {account} in the app and tap Account details; you can share the routing and account numbers or "
         "download a pre-filled direct deposit form to give to your employer.",
         ("When will my first salary arrive?", "Usually after one or two pay cycles, depending on your employer."),
         "a direct deposit"),
    Task("statement", "bank", ("How do I download last month's statement?", "I need my statements for a mortgage "
         "application.", "Where can I find statements older than a year?"),
         "Statements are under Accounts > Documents in online banking. Choose the month and download the PDF; the "
         "last seven years are available there, so there is no need to request paper copies.",
         ("Are these accepted as official documents?", "Yes, the PDFs carry the bank's digital signature."),
         "a statement request"),
    Task("savings_rate", "bank", ("What interest rate does the {account} pay?", "How is interest calculated on "
         "savings?", "When is interest paid into my savings account?"),
         "Interest is calculated daily on the closing balance and paid on the first day of each month. The current "
         "rate is shown on the account page, and any change is announced at least 30 days ahead.",
         ("Is the interest taxable?", "Usually yes; we send a yearly interest summary to help with your tax return."),
         "savings interest"),
    Task("travel_notice", "bank", ("Do I need to tell you before I travel abroad?", "I'm going to Japan next week. "
         "Will my {card} work?", "My card was declined on holiday last year. How do I avoid that?"),
         "There is no need to file a travel notice: our fraud checks use your phone's location if you allow it in the "
         "app. Make sure your contact details are current so we can reach you if a payment looks unusual.",
         ("Are there foreign transaction fees?", "The {card} charges no foreign transaction fee; the exchange rate is "
          "the network rate on the day."), "travel with a card"),
    Task("close_account", "bank", ("How do I close my {account}?", "I want to close my account and move my money.",
         "What happens to my balance if I close the account?"),
         "Move any standing orders first, then go to Help > Close account. We transfer the remaining balance to an "
         "account you choose and send a closing statement within 10 working days.",
         ("Can I reopen it later?", "Not the same account, but you can open a new one at any time."),
         "closing an account"),
    Task("file_claim", "insurance", ("How do I file a claim on my {policy} after {incident}?",
         "I need to make a claim for {incident}. Where do I start?", "What do I need to claim for {incident}?"),
         "Start a claim in the {company} app under Claims > New claim. Add photos of the damage, the date it happened "
         "and any receipts; a handler will contact you within two working days to arrange an assessment.",
         ("Should I repair things before the assessor comes?", "Make only urgent repairs that prevent further damage, "
          "and keep the receipts; leave the rest until the assessment."), "a claim"),
    Task("claim_status", "insurance", ("How can I check the status of my claim?", "It's been two weeks since I filed "
         "my claim. Any update?", "Who is handling my claim for {incident}?"),
         "You can follow each step of the claim under Claims in the app, including the handler's name and the next "
         "action. If nothing has changed for 10 working days, use Message handler and we will reply within one day.",
         ("Can I speed it up?", "Sending all photos and receipts up front is the fastest way; missing documents are "
          "the most common cause of delay."), "a claim status"),
    Task("deductible", "insurance", ("What is the deductible on my {policy}?", "What does deductible mean on my "
         "policy?", "Why was {fee} dollars taken off my claim payout?"),
         "The deductible is the part of each claim you pay yourself; we pay the rest up to your cover limit. Your "
         "amount is on page one of the policy schedule. A higher deductible lowers the premium.",
         ("Can I change it mid-year?", "Yes, from Policy > Cover options; the premium is adjusted from that day."),
         "a deductible"),
    Task("premium_increase", "insurance", ("Why did my premium go up this year?", "My {policy} renewal is {amount} "
         "dollars more than last year.", "Can you explain the increase in my renewal price?"),
         "Premiums change with repair costs, claims in your area and any claims on the policy. The renewal letter "
         "lists the main reasons; you can lower the price by raising the deductible or removing optional extras.",
         ("Can I pay monthly instead?", "Yes, monthly payments are available at no extra cost on most policies."),
         "a premium increase"),
    Task("add_driver", "insurance", ("How do I add a driver to my car insurance policy?", "My daughter just passed "
         "her test. Can she drive my car?", "Can I add a named driver for one month?"),
         "Add the driver under Policy > Drivers with their licence details. The change takes effect immediately and "
         "the app shows any premium difference before you confirm. Temporary drivers can be added for 1 to 28 days.",
         ("Will it affect my no-claims discount?", "No, the discount belongs to the main policyholder."),
         "adding a driver"),
    Task("cancel_policy", "insurance", ("How do I cancel my {policy}?", "I sold my car. Can I cancel the insurance?",
         "Is there a fee for cancelling my policy early?"),
         "You can cancel in the app under Policy > Cancel. Within the first 14 days there is no fee and you get a full "
         "refund; after that we refund the unused days minus a 25 dollar admin fee.",
         ("When will the refund arrive?", "Refunds go back to the original payment method within 5 working days."),
         "a cancellation"),
    Task("travel_cover", "insurance", ("Does my travel insurance cover cancelled flights?", "Am I covered if I get "
         "sick abroad?", "Does my {policy} cover skiing?"),
         "The policy covers medical treatment abroad and cancellation for reasons listed in section 3, such as illness "
         "or a strike. Winter sports are covered only with the sports add-on, which you can buy before you travel.",
         ("What number do I call in an emergency?", "Use the emergency assistance button in the app; it connects "
          "you to the 24-hour team wherever you are."), "travel cover"),
]


def fill(template: str, rng: random.Random, company: str) -> str:
    """Fill a task template's slots with random values (unused slots are ignored)."""
    return template.format(company=company, card=rng.choice(CARDS), account=rng.choice(ACCOUNTS),
                           policy=rng.choice(POLICIES), incident=rng.choice(INCIDENTS),
                           amount=rng.choice([45, 120, 260, 389, 740, 1200, 2500]), fee=rng.choice([15, 25, 35, 50]))


def company_for(task: Task, rng: random.Random) -> str:
    """A fictional company of the task's domain."""
    return rng.choice(BANKS if task.domain == "bank" else INSURERS)


def question(task: Task, rng: random.Random, company: str) -> str:
    """One user wording of the task, with an optional greeting."""
    text = fill(rng.choice(task.asks), rng, company) + rng.choice(USER_SUFFIXES)
    opener = rng.choice(USER_OPENERS)
    if opener.endswith(", ") and not text.startswith(("I ", "I'")):
        text = text[0].lower() + text[1:]
    return opener + text


def good_answer(task: Task, rng: random.Random, company: str) -> str:
    """A helpful, correct and polite answer."""
    return (rng.choice(OPENERS) + fill(task.steps, rng, company) + rng.choice(CLOSERS)).strip()


def bad_answer(task: Task, rng: random.Random, company: str) -> tuple[str, str]:
    """An unhelpful answer and its kind: curt, wrong, evasive or needlessly verbose."""
    kind = rng.choice(["curt", "wrong", "evasive", "verbose"])
    noun = task.noun
    if kind == "curt":
        text = rng.choice(["Check the app.", "Look it up on the website.", "Call the branch.",
                           f"We don't discuss {noun} in chat.", "Read your documents, it's all in there."])
    elif kind == "wrong":
        text = rng.choice([f"There is nothing you can do about {noun}; {company} never changes anything once it "
                           "is processed.", f"Just send us your full card number and PIN by e-mail and we will sort "
                           f"out {noun} for you.", f"For {noun} you have to visit a branch in person with a paper "
                           "form, and it takes about three months.", f"Ignore it. Problems with {noun} always fix "
                           "themselves after a while."])
    elif kind == "evasive":
        text = rng.choice([f"That depends on many factors. {noun.capitalize()} can be complicated.",
                           f"I'm not sure. Maybe try again later or ask someone else about {noun}.",
                           "Policies vary, so I can't really say anything specific."])
    else:
        text = (f"Thank you so much for your message, we truly value you as a customer of {company} and we "
                f"understand that {noun} can feel stressful. There are many things to consider, and every situation "
                "is different, so it is important to think carefully, review all of your options, consider your "
                "personal circumstances and perhaps reflect on what matters most to you before taking any step. We "
                "are always here for you.")
    return text, kind


def followup(task: Task, rng: random.Random, company: str) -> tuple[str, str]:
    """A follow-up user question and its helpful answer."""
    ask, answer = task.followup
    return rng.choice(FOLLOWUP_OPENERS) + ask, fill(answer, rng, company)


def system_prompt(task: Task, rng: random.Random, company: str) -> str:
    """A support-assistant system prompt for the company."""
    return rng.choice([
        f"You are a helpful support assistant for {company}. Answer clearly and briefly.",
        f"You are {company}'s virtual assistant. Be polite, accurate and concise. Never ask for passwords or PINs.",
        f"You help customers of {company}. Give step-by-step answers and keep them short.",
        f"You are a customer service agent at {company}. If you are unsure, say so and offer a next step.",
    ])
