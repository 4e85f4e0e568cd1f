"""The words a notice uses for fideslang keys, channels and durations, in English and French.

Each data category and data use is said in words a member understands; a key without its own
wording takes its nearest ancestor's (``user.contact.address.street`` → "your postal
address"), and every root of the taxonomy has wording, so every key has some. Pure.
"""

from __future__ import annotations

import functools
import math

from babel import Locale
from babel.lists import format_list

from parrain.consent import taxonomy
from parrain.consent.schemas import Channel, NoticeLanguage

EN, FR = NoticeLanguage.EN, NoticeLanguage.FR

#: Data categories: a noun phrase with its possessive.
CATEGORIES: dict[str, dict[NoticeLanguage, str]] = {
    "system": {
        EN: "technical data about our systems",
        FR: "des données techniques de nos systèmes",
    },
    "user": {EN: "your personal data", FR: "vos données personnelles"},
    "user.account": {EN: "your account details", FR: "les informations de votre compte"},
    "user.account.username": {EN: "your username", FR: "votre nom d'utilisateur"},
    "user.account.settings": {EN: "your account settings", FR: "les réglages de votre compte"},
    "user.authorization": {EN: "your login details", FR: "vos identifiants de connexion"},
    "user.behavior": {EN: "what you do in the app", FR: "ce que vous faites dans l'application"},
    "user.behavior.browsing_history": {
        EN: "your browsing history",
        FR: "votre historique de navigation",
    },
    "user.behavior.media_consumption": {
        EN: "what you watch, read or listen to",
        FR: "ce que vous regardez, lisez ou écoutez",
    },
    "user.behavior.purchase_history": {EN: "what you buy", FR: "vos achats"},
    "user.behavior.search_history": {EN: "your searches", FR: "vos recherches"},
    "user.biometric": {EN: "biometric data about you", FR: "des données biométriques sur vous"},
    "user.biometric.voice": {EN: "your voice", FR: "votre voix"},
    "user.biometric.fingerprint": {EN: "your fingerprints", FR: "vos empreintes digitales"},
    "user.childrens": {EN: "data about children", FR: "des données sur des enfants"},
    "user.contact": {EN: "your contact details", FR: "vos coordonnées"},
    "user.contact.address": {EN: "your postal address", FR: "votre adresse postale"},
    "user.contact.address.city": {EN: "your home town", FR: "votre ville"},
    "user.contact.address.country": {EN: "your country", FR: "votre pays"},
    "user.contact.email": {EN: "your email address", FR: "votre adresse e-mail"},
    "user.contact.phone_number": {EN: "your phone number", FR: "votre numéro de téléphone"},
    "user.content": {EN: "what you write or post", FR: "ce que vous écrivez ou publiez"},
    "user.content.self_image": {EN: "your photo", FR: "votre photo"},
    "user.content.public": {
        EN: "what you say in public, such as a review or a testimonial",
        FR: "ce que vous dites en public, comme un avis ou un témoignage",
    },
    "user.content.private": {EN: "your private messages", FR: "vos messages privés"},
    "user.criminal_history": {
        EN: "data about criminal convictions",
        FR: "des données sur des condamnations pénales",
    },
    "user.demographic": {
        EN: "facts about you, such as your age",
        FR: "des informations sur vous, comme votre âge",
    },
    "user.demographic.age_range": {EN: "your age range", FR: "votre tranche d'âge"},
    "user.demographic.date_of_birth": {EN: "your date of birth", FR: "votre date de naissance"},
    "user.demographic.gender": {EN: "your gender", FR: "votre genre"},
    "user.demographic.language": {EN: "your language", FR: "votre langue"},
    "user.demographic.marital_status": {
        EN: "your marital status",
        FR: "votre situation familiale",
    },
    "user.demographic.political_opinion": {
        EN: "your political opinions",
        FR: "vos opinions politiques",
    },
    "user.demographic.profile": {
        EN: "your profile and your life story",
        FR: "votre profil et votre parcours",
    },
    "user.demographic.race_ethnicity": {
        EN: "your racial or ethnic origin",
        FR: "votre origine raciale ou ethnique",
    },
    "user.demographic.religious_belief": {
        EN: "your religion or beliefs",
        FR: "votre religion ou vos convictions",
    },
    "user.demographic.sexual_orientation": {
        EN: "your sexual orientation",
        FR: "votre orientation sexuelle",
    },
    "user.device": {EN: "data about your phone", FR: "des données sur votre téléphone"},
    "user.device.ip_address": {EN: "your IP address", FR: "votre adresse IP"},
    "user.financial": {EN: "your financial details", FR: "vos informations financières"},
    "user.financial.bank_account": {
        EN: "your bank account details",
        FR: "vos coordonnées bancaires",
    },
    "user.financial.credit_card": {EN: "your card details", FR: "votre carte bancaire"},
    "user.government_id": {EN: "an official ID number", FR: "un numéro d'identité officiel"},
    "user.health_and_medical": {EN: "data about your health", FR: "des données sur votre santé"},
    "user.health_and_medical.genetic": {EN: "your genetic data", FR: "vos données génétiques"},
    "user.job_title": {EN: "your job title", FR: "votre poste"},
    "user.location": {EN: "where you are", FR: "l'endroit où vous êtes"},
    "user.name": {EN: "your name", FR: "votre nom"},
    "user.name.first": {EN: "your first name", FR: "votre prénom"},
    "user.name.last": {EN: "your last name", FR: "votre nom de famille"},
    "user.payment": {EN: "your payment details", FR: "vos informations de paiement"},
    "user.privacy_preferences": {EN: "your privacy choices", FR: "vos choix de confidentialité"},
    "user.sensor": {EN: "data from your phone's sensors", FR: "les capteurs de votre téléphone"},
    "user.social": {EN: "your activity on social networks", FR: "votre activité sur les réseaux"},
    "user.telemetry": {EN: "how you use the app", FR: "votre usage de l'application"},
    "user.unique_id": {EN: "an ID number we give you", FR: "un numéro qui vous identifie"},
    "user.user_sensor": {
        EN: "data from your phone's sensors",
        FR: "les capteurs de votre téléphone",
    },
    "user.workplace": {EN: "where you work", FR: "votre lieu de travail"},
}

#: Data uses: why, as a phrase that follows the data ("your photo, for our own ads").
USES: dict[str, dict[NoticeLanguage, str]] = {
    "analytics": {EN: "to measure how the programme works", FR: "pour mesurer les résultats"},
    "collect": {EN: "for a purpose not yet decided", FR: "pour un usage pas encore décidé"},
    "employment": {EN: "for recruitment", FR: "pour le recrutement"},
    "essential": {EN: "to run the programme", FR: "pour faire fonctionner le programme"},
    "essential.fraud_detection": {EN: "to detect fraud", FR: "pour détecter la fraude"},
    "essential.legal_obligation": {
        EN: "to meet our legal duties",
        FR: "pour respecter nos obligations légales",
    },
    "essential.service.authentication": {
        EN: "to check that it is really you",
        FR: "pour vérifier que c'est bien vous",
    },
    "essential.service.notifications": {
        EN: "to send you news of the programme",
        FR: "pour vous donner des nouvelles du programme",
    },
    "essential.service.operations.support": {
        EN: "to answer your questions",
        FR: "pour répondre à vos questions",
    },
    "essential.service.payment_processing": {EN: "to pay you", FR: "pour vous payer"},
    "essential.service.security": {
        EN: "to keep the programme safe",
        FR: "pour protéger le programme",
    },
    "finance": {EN: "for our accounts", FR: "pour notre comptabilité"},
    "functional": {EN: "to make the app work", FR: "pour faire marcher l'application"},
    "marketing": {EN: "for our marketing", FR: "pour notre marketing"},
    "marketing.advertising": {EN: "in our adverts", FR: "dans nos publicités"},
    "marketing.advertising.first_party.targeted": {
        EN: "to choose the adverts you see",
        FR: "pour choisir les publicités que vous voyez",
    },
    "marketing.advertising.profiling": {
        EN: "to choose the adverts you see",
        FR: "pour choisir les publicités que vous voyez",
    },
    "marketing.advertising.third_party": {
        EN: "in adverts by other companies",
        FR: "dans des publicités d'autres sociétés",
    },
    "marketing.communications": {
        EN: "to send you offers",
        FR: "pour vous envoyer des offres",
    },
    "operations": {EN: "to run our business", FR: "pour le fonctionnement de notre société"},
    "personalize": {EN: "to tailor what you see", FR: "pour adapter ce que vous voyez"},
    "sales": {EN: "for our sales team", FR: "pour notre équipe commerciale"},
    "third_party_sharing": {
        EN: "to pass on to other companies",
        FR: "pour transmission à d'autres sociétés",
    },
    "train_ai_system": {
        EN: "to train computer models (AI)",
        FR: "pour entraîner des modèles d'IA",
    },
}

CHANNELS: dict[Channel, dict[NoticeLanguage, str]] = {
    Channel.APP: {EN: "in the app", FR: "dans l'application"},
    Channel.WEB: {EN: "on the website", FR: "sur le site web"},
    Channel.EMAIL: {EN: "by email", FR: "par e-mail"},
    Channel.SMS: {EN: "by text message", FR: "par SMS"},
    Channel.PUSH: {EN: "in app notifications", FR: "dans les notifications"},
    Channel.SOCIAL: {EN: "on social networks", FR: "sur les réseaux sociaux"},
    Channel.PRINT: {EN: "in print", FR: "sur papier"},
    Channel.OUT_OF_HOME: {EN: "on posters", FR: "sur des affiches"},
    Channel.TV: {EN: "on TV", FR: "à la télévision"},
    Channel.RADIO: {EN: "on the radio", FR: "à la radio"},
    Channel.PAYMENT_PROVIDER: {
        EN: "with the payment service (PayPal)",
        FR: "auprès du service de paiement (PayPal)",
    },
}

#: Who a member may complain to, by market (GDPR Art. 13(2)(d)).
AUTHORITIES: dict[str, dict[NoticeLanguage, str]] = {
    "GB": {EN: "the ICO (ico.org.uk)", FR: "l'ICO (ico.org.uk)"},
    "FR": {EN: "the CNIL (cnil.fr)", FR: "la CNIL (cnil.fr)"},
}
ANY_AUTHORITY = {
    EN: "the data protection authority of your country",
    FR: "l'autorité de protection des données de votre pays",
}

_UNITS: dict[NoticeLanguage, dict[str, tuple[str, str]]] = {
    EN: {
        "year": ("year", "years"),
        "month": ("month", "months"),
        "week": ("week", "weeks"),
        "day": ("day", "days"),
    },
    FR: {
        "year": ("an", "ans"),
        "month": ("mois", "mois"),
        "week": ("semaine", "semaines"),
        "day": ("jour", "jours"),
    },
}


def _nearest(table: dict[str, dict[NoticeLanguage, str]], key: str) -> dict[NoticeLanguage, str]:
    for candidate in taxonomy.lineage(key):
        if candidate in table:
            return table[candidate]
    raise KeyError(key)


def category_words(key: str, language: NoticeLanguage) -> str:
    """``user.content.self_image`` → "your photo" / "votre photo"; an unknown key as itself."""
    try:
        return _nearest(CATEGORIES, key)[language]
    except KeyError:
        return key


def use_words(key: str, language: NoticeLanguage) -> str:
    try:
        return _nearest(USES, key)[language]
    except KeyError:
        return key


def channel_words(value: str, language: NoticeLanguage) -> str:
    """A listed channel in words; anything else exactly as the declaration wrote it."""
    word = value.strip().lower().replace(" ", "_").replace("-", "_")
    try:
        return CHANNELS[Channel(word)][language]
    except ValueError:
        return f"“{value}”" if language is EN else f"« {value} »"


@functools.cache
def _territory_names(language: NoticeLanguage) -> dict[str, str]:
    names = Locale.parse(language.value).territories
    return {code: name for code, name in names.items() if isinstance(code, str)}


def territory_words(value: str, language: NoticeLanguage) -> str:
    """``GB`` → "United Kingdom" / "Royaume-Uni"; anything else exactly as written."""
    name = _territory_names(language).get(value.strip().upper())
    if name is not None:
        return name
    return f"“{value}”" if language is EN else f"« {value} »"


def authority_words(market: str, language: NoticeLanguage) -> str:
    return AUTHORITIES.get(market, ANY_AUTHORITY)[language]


def join(values: list[str], language: NoticeLanguage) -> str:
    """ "a, b and c" / "a, b et c"."""
    return format_list(values, locale=language.value) if values else ""


def _month_count(days: int) -> int | None:
    """k when ``days`` is k months: from 30·k days up to k twelfths of a year (183 → 6)."""
    for months in range(1, 12):
        if 30 * months <= days <= math.ceil(months * 365 / 12):
            return months
    return None


def duration_words(days: int, language: NoticeLanguage) -> str:
    """183 → "6 months" / "6 mois"; 365 → "1 year"; 14 → "2 weeks"; 45 → "45 days".

    A month is 30 days up to a twelfth of a year: "6 months" says 180 to 183 days."""
    if days % 365 == 0:
        count, unit = days // 365, "year"
    elif (months := _month_count(days)) is not None:
        count, unit = months, "month"
    elif days % 7 == 0:
        count, unit = days // 7, "week"
    else:
        count, unit = days, "day"
    singular, plural = _UNITS[language][unit]
    return f"{count} {singular if count == 1 else plural}"
