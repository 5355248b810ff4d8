"""English normalization: each category maps to the expected spoken form."""

import pytest

from voicegen.text import normalize
from voicegen.text.numbers import cardinal, fraction, ordinal, year

CASES = {
    "cardinals": [
        ("There are 3,497 people.", "There are three thousand four hundred ninety-seven people."),
        ("I have 12 cats.", "I have twelve cats."),
        ("Agent 007 here.", "Agent zero zero seven here."),
    ],
    "decimals_negatives": [
        ("Pi is 3.14.", "Pi is three point one four."),
        ("It fell to -5 today.", "It fell to minus five today."),
        ("Only .5 left.", "Only point five left."),
    ],
    "fractions": [
        ("Add 1/2 cup and 3/4 spoon.", "Add one half cup and three quarters spoon."),
        ("About 2/3 of 5/8.", "About two thirds of five eighths."),
        ("After 9/11, 19/11 of it.", "After nine eleven, nineteen elevenths of it."),  # the day, not a fraction
        ("So 10^6 and x^2 + y^3, 10 ÷ 2, and 5 - 3 = 2.",
         "So ten to the sixth and x squared plus y cubed, ten divided by two, and five minus three equals two."),
        ("2024's best, 1990's music, the 80's, a 1080p screen.",
         "twenty twenty-four's best, nineteen nineties music, the eighties, a ten eighty p screen."),
        ("Take 1 1/2 cups.", "Take one and one half cups."),
    ],
    "ordinals": [
        ("The 1st and 22nd and 103rd.", "The first and twenty-second and one hundred third."),
        ("Park on the -1st floor.", "Park on the minus first floor."),
        ("In the 1st-2nd centuries, 3rd – 5th place.", "In the first to second centuries, third to fifth place."),
        ("A 2nd-floor flat.", "A second floor flat."),
    ],
    "percentages": [
        ("Up 15% and 2.5 % more.", "Up fifteen percent and two point five percent more."),
    ],
    "ranges": [
        ("From 1990-1995 it grew.", "From nineteen ninety to nineteen ninety-five it grew."),
        ("Wait 5-10 minutes.", "Wait five to ten minutes."),
    ],
    "years_vs_quantities": [
        ("In 1945 the war ended.", "In nineteen forty-five the war ended."),
        ("We counted 1945 people.", "We counted one thousand nine hundred forty-five people."),
        ("Since 2005 and by 1905.", "Since two thousand five and by nineteen oh five."),
        ("Back in 2000.", "Back in two thousand."),
        ("Revenue rose in Q3 2024.", "Revenue rose in Q three twenty twenty-four."),
        ("The 1984 Olympics and the 2024 election.", "The nineteen eighty-four Olympics and the twenty twenty-four election."),
        ("2024 was a good year.", "twenty twenty-four was a good year."),
        ("He scored 2024 points in Room 1204.", "He scored two thousand twenty-four points in Room one thousand two hundred four."),
        ("Over 1500 came, 1200 people stayed.", "Over one thousand five hundred came, one thousand two hundred people stayed."),
    ],
    "decades": [
        ("The 1990s were loud.", "The nineteen nineties were loud."),
        ("Music of the '80s.", "Music of the eighties."),
    ],
    "currency": [
        ("It cost $4.2 million.", "It cost four point two million dollars."),
        ("Lunch is $3.50.", "Lunch is three dollars and fifty cents."),
        ("Just $1 or $0.99.", "Just one dollar or ninety-nine cents."),
        ("Pay €20, £3.99 or ¥100.", "Pay twenty euros, three pounds and ninety-nine pence or one hundred yen."),
        ("That is 30 euros.", "That is thirty euros."),
        ("Revenue hit $5B.", "Revenue hit five billion dollars."),
        ("Send USD 40.", "Send forty dollars."),
        ("It costs $5-$10 or £20-30.", "It costs five dollars to ten dollars or twenty pounds to thirty pounds."),
    ],
    "dates": [
        ("Open Mon-Fri, Tue 3/14 and Mon. to Sat. Come by.",
         "Open Monday to Friday, Tuesday, March fourteenth and Monday to Saturday. Come by."),
        ("I sat in the sun; Rs. 500 each.", "I sat in the sun; five hundred rupees each."),
        ("On March 3rd, 2025 we met.", "On March third, twenty twenty-five we met."),
        ("Due 2025-03-03.", "Due March third, twenty twenty-five."),
        ("Born 3 March 1990.", "Born the third of March nineteen ninety."),
        ("See you Jan. 5.", "See you January fifth."),
    ],
    "times": [
        ("Meet at 5:30 p.m. today.", "Meet at five thirty P M today."),
        ("The train leaves at 17:45.", "The train leaves at seventeen forty-five."),
        ("Wake at 7 am.", "Wake at seven A M."),
        ("At 9:05 sharp.", "At nine oh five sharp."),
        # one digit after the colon is no time: a ratio or a score; after a name, a verse or a score
        ("A 16:9 screen, mixed 1:1; they won 3:1.",
         "A sixteen to nine screen, mixed one to one; they won three to one."),
        ("Genesis 1:1 and Arsenal 3:1 Chelsea.", "Genesis one one and Arsenal three one Chelsea."),
    ],
    "phone_numbers": [
        ("Call (555) 123-4567.", "Call five five five, one two three, four five six seven."),
        ("Call +44 20 7946 0958.", "Call plus four four, two zero, seven nine four six, zero nine five eight."),
        ("Call 555-1234 or 911.", "Call five five five, one two three four or nine one one."),
        ("See pages 100-1200.", "See pages one hundred to one thousand two hundred."),
    ],
    "units": [
        ("It is 6 ft. tall, 2 yrs old.", "It is six feet tall, two years old."),  # not a sentence end
        ("See p. 4 and pp. 10-12, ext. 21, Ft. Worth.",
         "See page four and pages ten to twelve, extension twenty-one, Fort Worth."),
        ("Add 3 tbsp and 1 tsp.", "Add three tablespoons and one teaspoon."),
        ("Run 5 km in 1 h.", "Run five kilometers in one hour."),
        ("It weighs 3 kg at 60 mph.", "It weighs three kilograms at sixty miles per hour."),
        ("It is 20°C with 5 GB.", "It is twenty degrees Celsius with five gigabytes."),
        ("He is 5'10\" tall.", "He is five foot ten tall."),
        ("A 24-hour day after COVID-19.", "A twenty-four hour day after Covid nineteen."),
    ],
    "abbreviations": [
        ("Dr. Smith met Mr. and Mrs. Jones.", "Doctor Smith met Mister and Missus Jones."),
        ("He lives on Main St. in St. Louis.", "He lives on Main Street in Saint Louis."),
        ("Fruit, e.g. apples, i.e. food, etc. are good.",
         "Fruit, for example apples, that is food, et cetera are good."),
        ("Cats vs. dogs.", "Cats versus dogs."),
        ("Approx. 3 mi away.", "Approximately three miles away."),
        ("We bought apples etc. Then we left.", "We bought apples et cetera. Then we left."),
        ("J. R. R. Tolkien wrote it.", "J R R Tolkien wrote it."),
        ("We need a Plan B. Then we go.", "We need a Plan B. Then we go."),
        ("The U.S. is big.", "The U S is big."),
        ("I live in the U.S. It is big; the U.S. Army too.", "I live in the U S. It is big; the U S Army too."),
    ],
    "roman_numerals": [
        ("World War II ended.", "World War two ended."),
        ("Henry VIII had wives.", "Henry the eighth had wives."),
        ("Read Chapter IV now.", "Read Chapter four now."),
        ("Then I said I am here.", "Then I said I am here."),
        ("WWI, then WWII.", "World War one, then World War two."),
        ("See chapter IV and part V.", "See chapter four and part five."),
        ("The part I liked.", "The part I liked."),  # a lone I after a lower-case cue is the pronoun
        # a lone L, C, D or M is a letter: these read "Type one hundred", "Class five hundred", "Part five hundred"
        ("A USB Type C cable, a Class D amp, Medicare Part D.",
         "A U S B Type C cable, a Class D amp, Medicare Part D."),
        ("Type I diabetes, Title X.", "Type one diabetes, Title ten."),
    ],
    "acronyms": [
        ("The GPU and the FBI.", "The G P U and the F B I."),
        ("NASA and NATO.", "Nasa and Nato."),
        ("Two GPUs.", "Two G P U's."),
        ("Q&A at AT&T, R&D.", "Q and A at A T and T, R and D."),  # AT spelled, not "at"
        ("The CEO's plan, NASA's rover; A/B tests, N/A.", "The C E O's plan, Nasa's rover; A B tests, N A."),
        ("Ph.D. students, c. 1500.", "P H D students, circa fifteen hundred."),
        ("THIS IS VERY IMPORTANT NEWS.", "this is very important news."),
    ],
    "versions": [
        ("Update to v2.0.1 now.", "Update to version two point zero point one now."),
        ("Python 3.11.7 is out.", "Python three point eleven point seven is out."),
    ],
    "web": [
        ("Visit https://www.example.com/docs today.", "Visit W W W dot example dot com slash docs today."),
        ("Mail john.doe@example.com now.", "Mail john dot doe at example dot com now."),
        ("Go to example.org.", "Go to example dot org."),
    ],
    "social": [
        ("Follow #MachineLearning and @elon_musk.", "Follow hashtag Machine Learning and at elon musk."),
    ],
    "symbols": [
        ("Great :) but :-( and <3; Note: (see below).", "Great but and; Note: (see below)."),  # emoticons
        ("Pizza w/ cheese, w/o olives, c/o John.", "Pizza with cheese, without olives, care of John."),
        ("A & B + C = D.", "A and B plus C equals D."),
        ("Yes and/or no, x/y, item #3.", "Yes and or no, x slash y, item number three."),
    ],
    "punctuation": [
        ('He said... "hi" -- then left (quickly)!!!', 'He said… "hi" — then left (quickly)!'),
        ("Really?!", "Really?"),
        ("‘Quoted’ and don’t.", "Quoted and don't."),
    ],
    "grouped_decimals": [  # the decimal rule ran before the grouping rule: "one, two hundred thirty-four point ..."
        ("It is 1,234.5678 in all.", "It is one thousand two hundred thirty-four point five six seven eight in all."),
        ("Pay 12,345.678 now.", "Pay twelve thousand three hundred forty-five point six seven eight now."),
    ],
    "decimal_before_letter": [  # "1.5M" left a sentence stop: "one. five M users"
        ("1.5M users joined.", "one point five million users joined."),
        ("We hit 12.5k and 2.5B views.", "We hit twelve point five thousand and two point five billion views."),
        ("It is 2.5x faster, 10x cheaper.", "It is two point five times faster, ten times cheaper."),
        ("See you at 2.30pm today.", "See you at two thirty P M today."),
        ("A 4K TV, Seat 12B and a 5k run.", "A four K T V, Seat twelve B and a five k run."),  # letters kept
        ("A lap in 12.50s.", "A lap in twelve point five zero seconds."),
        ("Rated 3.5/5.", "Rated three point five out of five."),
    ],
    "splits_and_ranges": [
        ("a 50/50 chance, an 80/20 rule", "a fifty-fifty chance, an eighty-twenty rule"),
        ("Up 10%-20% or 5-10% or 5-10 km.", "Up ten percent to twenty percent or five to ten percent or five to ten kilometers."),
        ("Open 5pm-7pm or 9:00-17:00.", "Open five P M to seven P M or nine o'clock to seventeen hundred."),
    ],
    "durations": [
        ("It ran 10:30:15 and 1:30:00.", "It ran ten hours, thirty minutes and fifteen seconds and one hour and thirty minutes."),
        ("Reset at 10:00:00.", "Reset at ten hours."),
    ],
    "per_units": [
        ("At 5 m/s or 60 mi/h.", "At five meters per second or sixty miles per hour."),
        ("It is $5/month or $3/kg.", "It is five dollars per month or three dollars per kilogram."),
    ],
    "money_and_signs": [
        ("It is ±5 and 50¢.", "It is plus or minus five and fifty cents."),
        ("Only $.99 or $-5.", "Only ninety-nine cents or minus five dollars."),
    ],
    "hyphen_compounds": [
        ("The 2nd-floor office in a 21st-century town.", "The second floor office in a twenty-first century town."),
    ],
    "code_names": [
        ("C# and .NET on x86-64.", "C sharp and dot net on x eighty-six sixty-four."),
    ],
    "latin_letters": [
        ("Straße, Æsir, Ørsted, œuvre, Łukasz, Đorđe, Þór.", "Strasse, Aesir, Orsted, oeuvre, Lukasz, Dorde, Thór."),
    ],
    "other_scripts": [  # espeak-ng read them as "Japanese letter", "Chinese letter"; Greek letters are read by name
        ("Hello こんにちは世界 world.", "Hello world."),
        ("Привет, مرحبا, שלום: ok.", "ok."),
        ("Let α = 2π and 5 μs.", "Let α equals two π and five μs."),  # Greek kept
    ],
    "lists_and_paragraphs": [
        ("1. Buy milk\n2. Eat\n\n\n- item", "one, Buy milk\ntwo, Eat\n\nitem"),
    ],
}


@pytest.mark.parametrize(
    "written, spoken", [case for cases in CASES.values() for case in cases],
    ids=[f"{cat}-{i}" for cat, cases in CASES.items() for i in range(len(cases))],
)
def test_spoken_form(written: str, spoken: str) -> None:
    assert normalize(written) == spoken
    assert normalize(spoken) == spoken  # idempotent on its own output


def test_number_helpers() -> None:
    assert cardinal(101) == "one hundred one"
    assert cardinal(10**60).startswith("one zero zero")
    assert ordinal(22) == "twenty-second"
    assert year(1900) == "nineteen hundred" and year(2010) == "twenty ten"
    assert fraction(1, 3) == "one third" and fraction(1, 0) == "one over zero"


def test_weird_input_is_cleaned() -> None:
    assert normalize("😀 hello\u200f שלום \x07\x00") == "hello"  # Hebrew: not read in English (see below)
    assert normalize("   \n\n  ") == ""
    out = normalize("1" * 60)
    assert not any(c.isdigit() for c in out) and out.startswith("one one")


def test_non_english_only_cleans() -> None:
    assert normalize("Bonjour  le monde 😀 !", language="fr-fr") == "Bonjour le monde!"


def test_line_endings() -> None:
    assert normalize("a\r\nb\r\n\r\nc") == "a\nb\n\nc"


def test_text_in_other_scripts_is_unspeakable() -> None:
    """Letters of scripts other than Latin and Greek are dropped, so text of nothing else raises the frontend's
    ValueError instead of being read letter by letter ("Japanese letter, Chinese letter")."""
    from voicegen.text import Frontend

    assert normalize("こんにちは世界") == ""
    with pytest.raises(ValueError, match="nothing speakable"):
        Frontend()("こんにちは世界 Привет")
    assert normalize("Привет мир", language="ru") == "Привет мир"  # other languages keep their script


def test_ellipsis_splits_before_a_capital_only() -> None:
    """An ellipsis before a lower-case word is a pause inside the sentence ("and then… we left"), not its end."""
    from voicegen.text.split import split_sentences

    assert [s.text for s in split_sentences(normalize("Wait… What?"))] == ["Wait…", "What?"]
    assert [s.text for s in split_sentences(normalize("and then… we left"))] == ["and then… we left"]
